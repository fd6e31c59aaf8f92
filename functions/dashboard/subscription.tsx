// The subscription page: how delivery goes (GET .../subscriptions/{name}), its attempt log, its
// dead letters, and its settings. With the subscribe scope: pause or resume, replay, rotate the
// secret (shown once, by the client), redrive and purge dead letters.

import type { SubscriptionView } from "../views.ts";
import { type AttemptPanel, AttemptTable } from "./attempt-log.tsx";
import { type DeadLetterPanel, DeadLetters } from "./dead-letters.tsx";
import { formatDuration } from "./format.ts";
import { ApiButton, ApiForm, apiPath, Cell, Count, Item, Live, pagePath, When } from "./parts.tsx";

export type { SubscriptionView };

export const StatusBadge = (props: { status: SubscriptionView["status"] }) => (
  <span class={`status status-${props.status}`} data-status={props.status}>
    {props.status}
  </span>
);

export const SubscriptionPage = (props: {
  sub: SubscriptionView;
  /** Null for a pull subscription: it makes no requests. */
  attempts: AttemptPanel | null;
  deadLetters: DeadLetterPanel;
  canManage: boolean;
  now: number;
}) => {
  const { sub, now, canManage } = props;
  return (
    <>
      <nav class="crumbs">
        <a href="/dashboard">Channels</a> / <a href={pagePath(sub.channel)}>{sub.channel}</a> /
      </nav>
      <Live id="sub-title">
        <h1>
          {sub.name} <StatusBadge status={sub.status} />
        </h1>
        {sub.disabledReason ? <p class="error-text">{sub.disabledReason}</p> : null}
        {canManage ? <Actions sub={sub} /> : null}
      </Live>
      {canManage ? <ReplayForm sub={sub} /> : null}
      <h2>Delivery</h2>
      <Live id="sub-delivery">
        <Delivery sub={sub} now={now} />
      </Live>
      {sub.ordered ? (
        <>
          <h2>Held keys</h2>
          <Live id="sub-held-keys">
            <HeldKeys sub={sub} now={now} />
          </Live>
        </>
      ) : null}
      {props.attempts === null ? null : (
        <>
          <h2>Recent requests</h2>
          <Live id="sub-attempts">
            <AttemptTable panel={props.attempts} now={now} />
          </Live>
        </>
      )}
      <h2>Dead letters</h2>
      <Live id="sub-dead-letters">
        <DeadLetters sub={sub} panel={props.deadLetters} now={now} />
      </Live>
      <h2>Settings</h2>
      <Live id="sub-settings">
        <Settings sub={sub} now={now} />
      </Live>
    </>
  );
};

const Actions = (props: { sub: SubscriptionView }) => {
  const path = apiPath(props.sub.channel, props.sub.name);
  return (
    <div class="actions">
      {props.sub.paused ? (
        <ApiButton call={{ method: "PATCH", path, body: { paused: false } }} done="Resumed.">
          Resume
        </ApiButton>
      ) : (
        <ApiButton call={{ method: "PATCH", path, body: { paused: true } }} done="Paused.">
          Pause
        </ApiButton>
      )}
      {props.sub.mode === "push" ? (
        <ApiButton
          call={{ method: "POST", path: `${path}/rotate-secret` }}
          done="Rotated: the old secret keeps signing for 24 h."
          confirm="Make a new signing secret? The old one keeps signing beside it for 24 h."
          showsSecret
        >
          Rotate secret
        </ApiButton>
      ) : null}
    </div>
  );
};

const ReplayForm = (props: { sub: SubscriptionView }) => (
  <ApiForm
    id="replay"
    call={{ method: "POST", path: apiPath(props.sub.channel, props.sub.name, "/replay") }}
    done="Replaying."
  >
    <label>
      Replay from ("earliest", a message id or an ISO-8601 time)
      <input name="from" required autocomplete="off" placeholder="earliest" />
    </label>
    <div class="actions">
      <button type="submit" class="secondary">
        Replay
      </button>
    </div>
  </ApiForm>
);

const Delivery = (props: { sub: SubscriptionView; now: number }) => {
  const { sub, now } = props;
  return (
    <dl class="facts">
      <Item term="Lag">
        <Count value={sub.lag} />
      </Item>
      <Item term="Pending">
        <Count value={sub.pending} />
      </Item>
      <Item term="Dead letters">
        <Count value={sub.deadLetters} />
      </Item>
      <Item term="Next attempt">
        <When at={sub.nextAttemptAt} now={now} />
      </Item>
      {sub.currentConcurrency === null ? null : (
        <Item term="Concurrency now">
          <Count value={sub.currentConcurrency} /> of <Count value={sub.maxConcurrency} />
        </Item>
      )}
      <Item term="Failures in a row">
        <Count value={sub.consecutiveFailures} />
      </Item>
      <Item term="Last error" wide>
        {sub.lastError === null ? (
          <span>—</span>
        ) : (
          <span class="error-text" data-last-error={sub.lastError}>
            {sub.lastError}
          </span>
        )}
      </Item>
      <Item term="Last error at">
        <When at={sub.lastErrorAt} now={now} />
      </Item>
      <Item term="Last success">
        <When at={sub.lastSuccessAt} now={now} />
      </Item>
      <Item term="Failing since">
        <When at={sub.failingSince} now={now} />
      </Item>
      <Item term="Last delivered id" wide>
        <code>{sub.lastDeliveredId ?? "—"}</code>
      </Item>
      <Item term="Lost to retention">
        <Count value={sub.expired} />
      </Item>
    </dl>
  );
};

/** An ordered subscription's keys held back by a failed message (GET ...: heldKeys). */
const HeldKeys = (props: { sub: SubscriptionView; now: number }) => {
  const { sub, now } = props;
  if (!sub.ordered) return null;
  if (sub.heldKeys.length === 0) return <p class="muted">No ordering key is held back.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>Ordering key</th>
          <th>Behind message</th>
          <th>Since</th>
          <th>Waiting</th>
        </tr>
      </thead>
      <tbody>
        {sub.heldKeys.map((held) => (
          <tr data-held-key={held.orderingKey ?? ""}>
            <Cell label="Ordering key">
              {held.orderingKey === null ? <em>(no key)</em> : <code>{held.orderingKey}</code>}
            </Cell>
            <Cell label="Behind message">
              <code>{held.messageId}</code>
            </Cell>
            <Cell label="Since">
              <When at={held.since} now={now} />
            </Cell>
            <Cell label="Waiting" num>
              <Count value={held.waiting} />
            </Cell>
          </tr>
        ))}
      </tbody>
    </table>
  );
};

const Settings = (props: { sub: SubscriptionView; now: number }) => {
  const { sub } = props;
  return (
    <dl class="facts">
      <Item term="Mode">{sub.mode}</Item>
      {sub.url === null ? null : (
        <Item term="URL" wide>
          <code>{sub.url}</code>
        </Item>
      )}
      <Item term="Types">{sub.types === null ? "all" : sub.types.join(", ")}</Item>
      <Item term="Batch size">
        <Count value={sub.batchSize} />
      </Item>
      <Item term="Max attempts">
        <Count value={sub.maxAttempts} />
      </Item>
      <Item term="Timeout">
        <data value={sub.timeoutMs}>{formatDuration(sub.timeoutMs)}</data>
      </Item>
      <Item term="Max requests per second">
        {sub.maxRequestsPerSecond === null ? (
          "unlimited"
        ) : (
          <Count value={sub.maxRequestsPerSecond} />
        )}
      </Item>
      <Item term="Max concurrency">
        <Count value={sub.maxConcurrency} />
      </Item>
      <Item term="Ordered">{sub.ordered ? "yes" : "no"}</Item>
      <Item term="Flow key">{sub.flowKey === null ? "none" : <code>{sub.flowKey}</code>}</Item>
      {sub.flowKey === null ? null : (
        <>
          <Item term="Flow rate per second">
            {sub.flowRate === null ? "none" : <Count value={sub.flowRate} />}
          </Item>
          <Item term="Flow parallelism">
            {sub.flowParallelism === null ? "none" : <Count value={sub.flowParallelism} />}
          </Item>
        </>
      )}
      <Item term="Created">
        <When at={sub.createdAt} now={props.now} />
      </Item>
      <Item term="Id" wide>
        <code>{sub.id ?? "—"}</code>
      </Item>
    </dl>
  );
};
