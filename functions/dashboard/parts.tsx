// The small pieces every dashboard page is made of. Values go out twice: in words for people, and
// machine-readable beside them (<data value>, <time datetime>), the API's own value, so what a
// page shows can be checked against the API's JSON.
//
// Buttons and forms that change something carry the API call they make (data-api-method,
// data-api-path, data-api-body); the client (client.ts) makes it with the signed-in key. A page
// renders them only for a key whose scopes allow that call.

import type { Child } from "hono/jsx";
import { formatBytes, formatCount, formatRelative } from "./format.ts";

const segment = encodeURIComponent;

/** The JSON API's path of a channel, or of one of its subscriptions, plus `rest`. */
export function apiPath(channel: string, subscription?: string, rest = ""): string {
  const base = `/v1/channels/${segment(channel)}`;
  return subscription === undefined
    ? `${base}${rest}`
    : `${base}/subscriptions/${segment(subscription)}${rest}`;
}

/** The dashboard page of a channel or of one of its subscriptions. */
export function pagePath(channel: string, subscription?: string): string {
  const base = `/dashboard/channels/${segment(channel)}`;
  return subscription === undefined ? base : `${base}/subscriptions/${segment(subscription)}`;
}

export const Count = (props: { value: number | null }) =>
  props.value === null ? (
    <span>unknown</span>
  ) : (
    <data value={props.value}>{formatCount(props.value)}</data>
  );

export const Bytes = (props: { value: number }) => (
  <data value={props.value}>{formatBytes(props.value)}</data>
);

/** A time as "3 min ago" (its ISO form in datetime and on hover); a dash when there is none. */
export const When = (props: { at: string | null; now: number }) =>
  props.at === null ? (
    <span>—</span>
  ) : (
    <time datetime={props.at} title={props.at}>
      {formatRelative(props.at, props.now)}
    </time>
  );

/** A region the client swaps for its newer copy on every refresh (forms stay outside them). */
export const Live = (props: { id: string; children: Child; class?: string }) => (
  <section id={props.id} data-live class={props.class}>
    {props.children}
  </section>
);

/**
 * A table cell; on a narrow screen rows become cards, and `label` names each value (the cell is
 * then a grid of the label and one box: the div holds whatever the value is made of).
 */
export const Cell = (props: { label: string; num?: boolean; children: Child }) => (
  <td data-label={props.label} class={props.num ? "num" : undefined}>
    <div>{props.children}</div>
  </td>
);

export interface ApiCall {
  method: "POST" | "PATCH" | "DELETE";
  path: string;
  /** Sent as JSON; none: no body. */
  body?: unknown;
}

/** A button that makes one API call; `confirm` asks first; `done` is said when it worked. */
export const ApiButton = (props: {
  call: ApiCall;
  done: string;
  confirm?: string;
  /** The answer carries a secret shown once (rotate-secret). */
  showsSecret?: boolean;
  danger?: boolean;
  children: Child;
}) => (
  <button
    type="button"
    class={props.danger ? "danger" : undefined}
    data-api-method={props.call.method}
    data-api-path={props.call.path}
    data-api-body={props.call.body === undefined ? undefined : JSON.stringify(props.call.body)}
    data-confirm={props.confirm}
    data-done={props.done}
    data-shows-secret={props.showsSecret ? "" : undefined}
  >
    {props.children}
  </button>
);

/** A form whose named fields become the JSON body of one API call (data-json fields parsed). */
export const ApiForm = (props: { id: string; call: ApiCall; done: string; children: Child }) => (
  <form
    id={props.id}
    class="api-form"
    data-api-method={props.call.method}
    data-api-path={props.call.path}
    data-done={props.done}
  >
    {props.children}
  </form>
);

/** A definition list row: term and value; `wide` takes two columns (URLs, ids, errors). */
export const Item = (props: { term: string; wide?: boolean; children: Child }) => (
  <div class={props.wide ? "item wide" : "item"} data-term={props.term}>
    <dt>{props.term}</dt>
    <dd>{props.children}</dd>
  </div>
);
