// The subscription page's panel of recent webhook requests, from the attempt log (attempts.ts).
//
// TODO(attempts): untested until the attempts branch is merged (the attempt log's route).

import type { AttemptLog } from "./attempts.ts";
import { formatDuration } from "./format.ts";
import { Cell, Count, When } from "./parts.tsx";

export const AttemptTable = (props: { log: AttemptLog; now: number }) => {
  if (props.log.kind === "unavailable") {
    return <p class="hint">The attempt log could not be read ({props.log.reason}).</p>;
  }
  if (props.log.attempts.length === 0) return <p class="hint">No requests yet.</p>;
  return (
    <table class="rows">
      <thead>
        <tr>
          <th>When</th>
          <th>Status</th>
          <th class="num">Messages</th>
          <th class="num">Attempt</th>
          <th class="num">Duration</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {props.log.attempts.map((attempt) => (
          <tr>
            <Cell label="When">
              <When at={attempt.at} now={props.now} />
            </Cell>
            <Cell label="Status">{String(attempt.status)}</Cell>
            <Cell label="Messages">
              <Count value={attempt.messages} />
              <span class="muted mono"> {attempt.firstId}</span>
            </Cell>
            <Cell label="Attempt" num>
              <Count value={attempt.attempt} />
            </Cell>
            <Cell label="Duration" num>
              {formatDuration(attempt.durationMs)}
            </Cell>
            <Cell label="Error">
              {attempt.error === null ? "—" : <span class="error-text">{attempt.error}</span>}
              {attempt.body === "" ? null : (
                <details>
                  <summary>answer</summary>
                  <pre>{attempt.body}</pre>
                </details>
              )}
            </Cell>
          </tr>
        ))}
      </tbody>
    </table>
  );
};
