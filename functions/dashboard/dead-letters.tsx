// The subscription page's dead letters: the oldest ones, with redrive (one or all) and purge for
// a key with the subscribe scope; only their count for one without it (the dead-letter routes
// need that scope).

import type { DeadLetter } from "../../shared/dead-letters.ts";
import type { SubscriptionView } from "../views.ts";
import { formatCount } from "./format.ts";
import { ApiButton, apiPath, Cell, Count, When } from "./parts.tsx";

export type DeadLetterPanel =
  | { kind: "page"; messages: DeadLetter[]; more: boolean }
  | { kind: "hidden" }; // the key lacks the subscribe scope the dead-letter routes need

export const DeadLetters = (props: {
  sub: SubscriptionView;
  panel: DeadLetterPanel;
  now: number;
}) => {
  const { sub, panel } = props;
  if (panel.kind === "hidden") {
    return (
      <p class="hint">
        <Count value={sub.deadLetters} /> dead letters. Listing them needs the subscribe scope.
      </p>
    );
  }
  if (panel.messages.length === 0) return <p class="hint">None.</p>;
  const path = apiPath(sub.channel, sub.name, "/dead-letters");
  return (
    <>
      <div class="actions">
        <ApiButton call={{ method: "POST", path: `${path}/redrive` }} done="Redriven.">
          Redrive all
        </ApiButton>
        <ApiButton
          call={{ method: "DELETE", path }}
          done="Purged."
          confirm={`Delete all ${formatCount(sub.deadLetters)} dead letters of ${sub.name}?`}
          danger
        >
          Purge all
        </ApiButton>
      </div>
      {panel.more ? (
        <p class="hint">The oldest {formatCount(panel.messages.length)} are listed.</p>
      ) : null}
      <table class="rows">
        <thead>
          <tr>
            <th>Message</th>
            <th class="num">Attempts</th>
            <th>Last error</th>
            <th>Dead since</th>
            <th>Data</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {panel.messages.map((letter) => (
            <tr data-dead-letter={letter.id}>
              <Cell label="Message">
                <code>{letter.id}</code>
                {letter.type === null ? null : <span class="muted"> {letter.type}</span>}
              </Cell>
              <Cell label="Attempts" num>
                <Count value={letter.attempts} />
              </Cell>
              <Cell label="Last error">
                <span class="error-text">{letter.lastError}</span>
              </Cell>
              <Cell label="Dead since">
                <When at={letter.deadAt} now={props.now} />
              </Cell>
              <Cell label="Data">
                <details data-key={`dead-letter:${letter.id}`}>
                  <summary>show</summary>
                  <pre>{letter.data}</pre>
                </details>
              </Cell>
              <Cell label="">
                <ApiButton
                  call={{ method: "POST", path: `${path}/redrive`, body: { ids: [letter.id] } }}
                  done="Redriven."
                >
                  Redrive
                </ApiButton>
              </Cell>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
};
