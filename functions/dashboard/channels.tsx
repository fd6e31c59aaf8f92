// The channels page: every channel the key may see, with what GET /v1/channels says of it, its
// last publish and its retention (what GET /v1/channels/{channel} says).

import type { ChannelSummary, Retention } from "../../shared/streams.ts";
import { formatRetention } from "./format.ts";
import { Bytes, Cell, Count, Item, Live, pagePath, When } from "./parts.tsx";

export interface ChannelRow extends ChannelSummary {
  lastPublishedAt: string | null;
  retention: Retention;
  retentionIsDefault: boolean;
}

export const ChannelsPage = (props: {
  channels: ChannelRow[];
  totals: { channels: number; messages: number; sizeBytes: number };
  now: number;
}) => (
  <>
    <h1>Channels</h1>
    <Live id="channels">
      <dl class="facts">
        <Item term="Channels">
          <Count value={props.totals.channels} />
        </Item>
        <Item term="Messages">
          <Count value={props.totals.messages} />
        </Item>
        <Item term="Size">
          <Bytes value={props.totals.sizeBytes} />
        </Item>
      </dl>
      {props.channels.length === 0 ? (
        <p class="hint">
          No channels yet. A channel is created by its first message: POST
          /v1/channels/&lt;name&gt;/messages.
        </p>
      ) : (
        <table class="rows">
          <thead>
            <tr>
              <th>Channel</th>
              <th class="num">Messages</th>
              <th class="num">Subscriptions</th>
              <th>Last publish</th>
              <th>Retention</th>
              <th class="num">Size</th>
            </tr>
          </thead>
          <tbody>
            {props.channels.map((channel) => (
              <tr data-channel={channel.name}>
                <Cell label="Channel">
                  <a href={pagePath(channel.name)}>{channel.name}</a>
                </Cell>
                <Cell label="Messages" num>
                  <Count value={channel.length} />
                </Cell>
                <Cell label="Subscriptions" num>
                  <Count value={channel.subscriptions} />
                </Cell>
                <Cell label="Last publish">
                  <When at={channel.lastPublishedAt} now={props.now} />
                </Cell>
                <Cell label="Retention">
                  <RetentionText
                    retention={channel.retention}
                    isDefault={channel.retentionIsDefault}
                  />
                </Cell>
                <Cell label="Size" num>
                  <Bytes value={channel.sizeBytes} />
                </Cell>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Live>
  </>
);

/** "7 d (default)": the API's values in data-max-age-ms and data-max-messages ("" for none). */
export const RetentionText = (props: { retention: Retention; isDefault: boolean }) => (
  <span
    data-max-age-ms={props.retention.maxAgeMs ?? ""}
    data-max-messages={props.retention.maxMessages ?? ""}
    data-default={String(props.isDefault)}
  >
    {formatRetention(props.retention)}
    {props.isDefault ? <span class="muted"> (default)</span> : null}
  </span>
);
