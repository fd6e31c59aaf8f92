// The app's env types, apart from the app itself (functions/app.ts imports every route, and every
// route needs these: kept here, as hono keeps its own in types.ts, there is no import circle).

import type { Principal } from "../shared/api-keys.ts";
import type { Config, Env } from "../shared/config.ts";
import type { Delivery } from "../shared/delivery.ts";
import type { Db } from "../shared/redis.ts";

export interface Variables {
  config: Config;
  db: Db;
  delivery: Delivery;
  /** Who made the request (functions/auth.ts); set on every /v1 route. */
  principal: Principal;
}

export interface AppEnv {
  Bindings: Env;
  Variables: Variables;
}

// Hono's documented way to type c.var in middleware that is not generic (bearerAuth's callback).
declare module "hono" {
  interface ContextVariableMap extends Variables {}
}
