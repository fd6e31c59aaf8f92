// The typed openapi-fetch client every method is written against: its own file, so that
// client.ts and the method groups (subscriptions.ts) each import it without importing each other.

import type { Client } from "openapi-fetch";
import type { paths } from "./schema.d.ts";

export type Api = Client<paths>;
