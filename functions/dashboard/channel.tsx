// The channel page: what GET /v1/channels/{channel} says, the requests of the last hour, its
// subscriptions as GET .../subscriptions shows them, and (with the publish scope) a form to
// publish a test message.

import type { ChannelInfo } from "../../shared/streams.ts";
import type { HourOfAttempts } from "./attempts.ts";
import { RetentionText } from "./channels.tsx";
import { RequestsChart } from "./chart.tsx";
import { ApiForm, apiPath, Bytes, Cell, Count, Item, Live, pagePath, When } from "./parts.tsx";
import { StatusBadge, type SubscriptionView } from "./subscription.tsx";

export const ChannelPage = (props: {
  info: ChannelInfo;
  subscriptions: SubscriptionView[];
  hours: HourOfAttempts[];
  canPublish: boolean;
  now: number;
}) => {
  const { info, now } = props;
  return (
    <>
      <nav class="crumbs">
        <a href="/dashboard">Channels</a> /
      </nav>
      <h1>{info.name}</h1>
      <Live id="channel-facts">
        <dl class="facts">
          <Item term="Messages">
            <Count value={info.length} />
          </Item>
          <Item term="Subscriptions">
            <Count value={info.subscriptions} />
          </Item>
          <Item term="Size">
            <Bytes value={info.sizeBytes} />
          </Item>
          <Item term="Retention">
            <RetentionText retention={info.retention} isDefault={info.retentionIsDefault} />
          </Item>
          <Item term="Oldest kept">
            <When at={info.firstPublishedAt} now={now} />
          </Item>
          <Item term="Last publish">
            <When at={info.lastPublishedAt} now={now} />
          </Item>
        </dl>
      </Live>
      <h2>Deliveries</h2>
      <Live id="channel-chart">
        {props.hours.length === 0 ? (
          <p class="hint">No push subscriptions: nothing is delivered.</p>
        ) : (
          <RequestsChart hours={props.hours} now={now} />
        )}
      </Live>
      <h2>Subscriptions</h2>
      <Live id="channel-subscriptions">
        <SubscriptionTable subscriptions={props.subscriptions} now={now} />
      </Live>
      {props.canPublish ? <PublishForm channel={info.name} /> : null}
    </>
  );
};

const SubscriptionTable = (props: { subscriptions: SubscriptionView[]; now: number }) =>
  props.subscriptions.length === 0 ? (
    <p class="hint">
      No subscriptions. Subscribe a webhook with POST /v1/channels/&lt;channel&gt;/subscriptions.
    </p>
  ) : (
    <table class="rows">
      <thead>
        <tr>
          <th>Name</th>
          <th>Status</th>
          <th class="num">Lag</th>
          <th class="num">Pending</th>
          <th class="num">Dead letters</th>
          <th>Last error</th>
          <th>Next attempt</th>
        </tr>
      </thead>
      <tbody>
        {props.subscriptions.map((sub) => (
          <tr data-subscription={sub.name}>
            <Cell label="Name">
              <a href={pagePath(sub.channel, sub.name)}>{sub.name}</a>
              {sub.mode === "pull" ? <span class="muted"> (pull)</span> : null}
            </Cell>
            <Cell label="Status">
              <StatusBadge status={sub.status} />
            </Cell>
            <Cell label="Lag" num>
              <Count value={sub.lag} />
            </Cell>
            <Cell label="Pending" num>
              <Count value={sub.pending} />
            </Cell>
            <Cell label="Dead letters" num>
              <Count value={sub.deadLetters} />
            </Cell>
            <Cell label="Last error">
              {sub.lastError === null ? (
                <span>—</span>
              ) : (
                <span class="error-text" data-last-error={sub.lastError}>
                  {sub.lastError} (<When at={sub.lastErrorAt} now={props.now} />)
                </span>
              )}
            </Cell>
            <Cell label="Next attempt">
              <When at={sub.nextAttemptAt} now={props.now} />
            </Cell>
          </tr>
        ))}
      </tbody>
    </table>
  );

const PublishForm = (props: { channel: string }) => (
  <>
    <h2>Publish a test message</h2>
    <ApiForm
      id="publish"
      call={{ method: "POST", path: apiPath(props.channel, undefined, "/messages") }}
      done="Published."
    >
      <label>
        Type (optional)
        <input name="type" placeholder="order.created" autocomplete="off" />
      </label>
      <label>
        Data (JSON)
        <textarea name="data" data-json required placeholder='{"orderId": 42}' />
      </label>
      <div class="actions">
        <button type="submit">Publish</button>
      </div>
    </ApiForm>
  </>
);
