// The subscription page's panel of its recent webhook requests, from its attempt log
// (attempts.ts: recentAttempts), each as GET .../attempts shows it. The answer's body is the
// endpoint's text: rendered as text (hono's JSX escapes it), never as markup.

import { traceIdOf } from "../../shared/trace.ts";
import type { AttemptView } from "./attempts.ts";
import { formatBytes, formatCount, formatDuration } from "./format.ts";
import { Cell, Count, When } from "./parts.tsx";

export interface AttemptPanel {
  attempts: AttemptView[];
  /** Older records exist than those listed. */
  more: boolean;
}

export const AttemptTable = (props: { panel: AttemptPanel; now: number }) => {
  const { attempts, more } = props.panel;
  if (attempts.length === 0) return <p class="hint">No requests yet.</p>;
  return (
    <>
      {more ? (
        <p class="hint">
          The newest {formatCount(attempts.length)} are listed; GET .../attempts?after=&lt;id&gt;
          pages through the rest.
        </p>
      ) : null}
      <table class="rows">
        <thead>
          <tr>
            <th>When</th>
            <th>Status</th>
            <th class="num">Messages</th>
            <th class="num">Attempt</th>
            <th class="num">Duration</th>
            <th>Trace</th>
            <th>Error</th>
            <th>Answer</th>
          </tr>
        </thead>
        <tbody>
          {attempts.map((attempt) => (
            <tr data-attempt={attempt.id}>
              <Cell label="When">
                <When at={attempt.at} now={props.now} />
              </Cell>
              <Cell label="Status">
                <span
                  class={attempt.error === null ? "ok-text" : "error-text"}
                  data-status-value={attempt.status}
                >
                  {attempt.status}
                </span>
              </Cell>
              <Cell label="Messages" num>
                <Count value={attempt.messages} />
                <span class="muted mono ids" data-first-id={attempt.firstId}>
                  {attempt.firstId === attempt.lastId
                    ? attempt.firstId
                    : `${attempt.firstId} … ${attempt.lastId}`}
                </span>
              </Cell>
              <Cell label="Attempt" num>
                <Count value={attempt.attempt} />
              </Cell>
              <Cell label="Duration" num>
                <data value={attempt.durationMs}>{formatDuration(attempt.durationMs)}</data>
              </Cell>
              <Cell label="Trace">
                <TraceId traceparent={attempt.traceparent} />
              </Cell>
              <Cell label="Error">
                {attempt.error === null ? (
                  <span>—</span>
                ) : (
                  <span class="error-text" data-error>
                    {attempt.error}
                  </span>
                )}
                {attempt.held.length === 0 ? null : (
                  <span class="muted" data-held>
                    {" holds "}
                    {attempt.held.map((h, i) => (
                      <>
                        {i > 0 ? ", " : ""}
                        <code data-held-key={h.orderingKey ?? ""}>
                          {h.orderingKey ?? "(no key)"}
                        </code>
                        {" behind "}
                        <code>{h.messageId}</code>
                      </>
                    ))}
                  </span>
                )}
              </Cell>
              <Cell label="Answer">
                {attempt.body === "" ? (
                  <span>—</span>
                ) : (
                  // data-key: the client keeps it open across refreshes.
                  <details data-key={`attempt:${attempt.id}`}>
                    <summary>
                      show{" "}
                      <span class="muted">
                        ({formatBytes(new TextEncoder().encode(attempt.body).length)})
                      </span>
                    </summary>
                    <pre>{attempt.body}</pre>
                  </details>
                )}
              </Cell>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
};

/** A request's trace id (its traceparent's second part), the whole traceparent on hover. */
const TraceId = (props: { traceparent: string | null }) =>
  props.traceparent === null ? (
    <span>—</span>
  ) : (
    <data class="muted mono" value={props.traceparent} title={props.traceparent}>
      {traceIdOf(props.traceparent)}
    </data>
  );
