// A client of todo-svc written against the types openapi-typescript generates from docs/openapi.json,
// calling through openapi-fetch. `node out/flow.js BASE_URL` drives the whole contract and exits 0
// only if every step behaved; tests/test_sdks.py generates schema.d.ts, type-checks this file
// strictly, compiles and runs it. The same steps as ../python_flow.py.

import { isDeepStrictEqual } from "node:util";
import createClient, { type Client } from "openapi-fetch";
import type { components, operations, paths } from "./schema.js";

type ErrorBody = components["schemas"]["ErrorBody"];
type TaskOut = components["schemas"]["TaskOut"];
type Sort = NonNullable<NonNullable<operations["listTasks"]["parameters"]["query"]>["sort"]>;

const SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"] satisfies Sort[];
const everySort: [Exclude<Sort, (typeof SORTS)[number]>] extends [never] ? true : never = true;
const MISSING_ID = 2 ** 31;
const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  412: "Precondition Failed",
  422: "Unprocessable Entity",
};

interface Result<D, E> {
  data?: D;
  error?: E;
  response: Response;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function same<T>(actual: T, expected: T, what: string): void {
  const [got, wanted] = [JSON.stringify(actual), JSON.stringify(expected)];
  check(isDeepStrictEqual(actual, expected), `${what}: expected ${wanted}, got ${got}`);
}

function ok<D, E>(result: Result<D, E>, status: number): D {
  const { data, error, response } = result;
  check(response.status === status, `expected ${status}, got ${response.status}: ${JSON.stringify(error)}`);
  check(data !== undefined, `expected a body with ${status}`);
  return data;
}

function empty<D, E>(result: Result<D, E>, status: number): void {
  check(result.response.status === status, `expected ${status}, got ${result.response.status}`);
  check(result.data === undefined, `expected no body with ${status}`);
}

/** The error body, checked field by field as docs/api.md defines it. */
function fails<D>(result: Result<D, ErrorBody>, status: number): ErrorBody {
  const { error, response } = result;
  check(response.status === status, `expected ${status}, got ${response.status}: ${JSON.stringify(result.data)}`);
  check(error !== undefined, `expected an error body with ${status}`);
  same(error.status_code, status, "status_code");
  same(error.error, STATUS_TEXT[status], "error");
  check(error.detail.length > 0, "an empty detail");
  same(error.request_id, response.headers.get("X-Request-ID"), "request_id");
  check(!Number.isNaN(Date.parse(error.timestamp)), `timestamp ${error.timestamp}`);
  return error;
}

function header(response: Response, name: string): string {
  const value = response.headers.get(name);
  check(value !== null, `no ${name} header`);
  return value;
}

function step(name: string): void {
  console.log(`ok: ${name}`);
}

/** Microseconds since the epoch: Date.parse drops the sub-millisecond digits the sort uses. */
function instant(timestamp: string): number {
  const fraction = /\.(\d+)/.exec(timestamp)?.[1] ?? "";
  return Date.parse(timestamp.replace(/\.\d+/, "")) * 1000 + Number(fraction.padEnd(6, "0").slice(0, 6));
}

/** Ids in the order `sort` names, ties broken by id in the same direction. */
function expectedOrder(tasks: TaskOut[], sort: Sort): number[] {
  const field = sort.replace(/^-/, "");
  const key = (task: TaskOut): string | number =>
    field === "title" ? task.title : instant(field === "created_at" ? task.created_at : task.updated_at);
  const ordered = [...tasks].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x < y ? -1 : x > y ? 1 : a.id - b.id;
  });
  const ids = ordered.map((task) => task.id);
  return sort.startsWith("-") ? ids.reverse() : ids;
}

async function account(baseUrl: string, name: string) {
  const api = createClient<paths>({ baseUrl });
  const body = { email: `${name}-${crypto.randomUUID().slice(0, 8)}@example.org`, password: "long enough pw" };
  const created = ok(await api.POST("/api/v1/auth/register", { body }), 201);
  fails(await api.POST("/api/v1/auth/register", { body }), 409);
  const pair = ok(await api.POST("/api/v1/auth/login", { body }), 200);
  same(pair.user.id, created.user.id, "the user logged in");
  same(pair.token_type, "bearer", "token_type");
  fails(await api.POST("/api/v1/auth/login", { body: { ...body, password: "not the password" } }), 401);
  return pair;
}

function bearer(baseUrl: string, token: string): Client<paths> {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

async function main(baseUrl: string): Promise<void> {
  const pub = createClient<paths>({ baseUrl });
  const pair = await account(baseUrl, "ann");
  const ann = bearer(baseUrl, pair.access_token);
  const bob = bearer(baseUrl, (await account(baseUrl, "bob")).access_token);
  const user = { user_id: pair.user.id };
  const tasksPath = "/api/v1/users/{user_id}/tasks";
  const taskPath = "/api/v1/users/{user_id}/tasks/{task_id}";
  const at = (task_id: number) => ({ path: { ...user, task_id } });
  step("register, login (409 on a second register, 401 on a wrong password)");
  const changesPath = "/api/v1/users/{user_id}/tasks/changes";
  const feedStart = ok(await ann.GET(changesPath, { params: { path: user } }), 200);
  same([feedStart.items, feedStart.deleted, feedStart.has_more], [[], [], false], "the feed's start");

  const created: TaskOut[] = [];
  for (const title of ["delta", "alpha", "charlie", "bravo"]) {
    const result = await ann.POST(tasksPath, { params: { path: user }, body: { title } });
    created.push(ok(result, 201));
    check(header(result.response, "Location").endsWith(`/tasks/${created.at(-1)?.id}`), "Location");
    header(result.response, "ETag");
  }
  const [delta, alpha, charlie] = created;
  const patch = { description: "100%_sure", completed: true };
  ok(await ann.PATCH(taskPath, { params: at(delta.id), body: patch }), 200);
  step("create tasks (Location, ETag)");

  type Query = NonNullable<operations["listTasks"]["parameters"]["query"]>;
  const listed = async (query: Query = {}) => ok(await ann.GET(tasksPath, { params: { path: user, query } }), 200);
  const ids = (tasks: TaskOut[]) => tasks.map((task) => task.id);
  const everything = (await listed({ limit: 100 })).items;
  same(everything.length, 4, "tasks listed");
  same(ids((await listed({ completed: true })).items), [delta.id], "completed=true");
  same((await listed({ completed: false })).total, 3, "completed=false");
  same(ids((await listed({ q: "ALPH" })).items), [alpha.id], "q=ALPH");
  same(ids((await listed({ q: "0%_s" })).items), [delta.id], "q=0%_s");
  same((await listed({ q: "0%_x" })).total, 0, "q=0%_x");
  for (const sort of SORTS) same(ids((await listed({ sort })).items), expectedOrder(everything, sort), sort);
  const window = await listed({ sort: "title", limit: 2, offset: 1 });
  same(window.items.map((task) => task.title), ["bravo", "charlie"], "a window by title");
  same([window.total, window.limit, window.offset], [4, 2, 1], "total, limit, offset");
  const pastTheEnd = { items: [], limit: 50, offset: 10, total: 4, next_cursor: null };
  same(await listed({ offset: 10 }), pastTheEnd, "past the end");
  step("list: completed, q (literal % and _), every sort, limit/offset");

  const fetched = await ann.GET(taskPath, { params: at(alpha.id) });
  same(ok(fetched, 200).title, "alpha", "title");
  const tag = header(fetched.response, "ETag");
  empty(await ann.GET(taskPath, { params: { ...at(alpha.id), header: { "If-None-Match": tag } } }), 304);
  const ifMatch = (task_id: number, etag: string) => ({ ...at(task_id), header: { "If-Match": etag } });
  const renamed = await ann.PATCH(taskPath, { params: ifMatch(alpha.id, tag), body: { title: "aleph" } });
  same(ok(renamed, 200).title, "aleph", "renamed");
  check(header(renamed.response, "ETag") !== tag, "the ETag did not change");
  fails(await ann.PATCH(taskPath, { params: ifMatch(alpha.id, tag), body: { title: "alef" } }), 412);
  same(ok(await ann.GET(taskPath, { params: at(alpha.id) }), 200).title, "aleph", "after a stale If-Match");
  step("ETag, If-None-Match -> 304, stale If-Match -> 412 (nothing changed)");

  const completePath = "/api/v1/users/{user_id}/tasks/{task_id}/complete";
  same(ok(await ann.PATCH(completePath, { params: at(charlie.id) }), 200).completed, true, "toggled");
  same(ok(await ann.PATCH(completePath, { params: at(charlie.id) }), 200).completed, false, "toggled back");
  for (const _ of [1, 2]) {
    const result = await ann.PATCH(completePath, { params: at(charlie.id), body: { completed: true } });
    same(ok(result, 200).completed, true, "set");
  }
  step("complete: toggle, set (twice)");

  const batch = { tasks: [0, 1, 2].map((n) => ({ title: `batch ${n}` })) };
  const made = ok(await ann.POST(`${tasksPath}/batch`, { params: { path: user }, body: batch }), 201).items;
  same(made.map((task) => task.title), ["batch 0", "batch 1", "batch 2"], "batch order");
  const body = { ids: ids(made), completed: true };
  const done = ok(await ann.POST(`${tasksPath}/batch/complete`, { params: { path: user }, body }), 200);
  check(done.items.every((task) => task.completed), "batch complete");
  const oneBad = { tasks: [{ title: "fine" }, { title: "   " }] };
  fails(await ann.POST(`${tasksPath}/batch`, { params: { path: user }, body: oneBad }), 400);
  const missing = { ids: [...ids(made), MISSING_ID] };
  fails(await ann.POST(`${tasksPath}/batch/delete`, { params: { path: user }, body: missing }), 404);
  same((await listed()).total, 7, "tasks after the failed batches");
  const all = { ids: ids(made) };
  const removed = await ann.POST(`${tasksPath}/batch/delete`, { params: { path: user }, body: all });
  same(ok(removed, 200).deleted, 3, "deleted");
  same((await listed()).total, 4, "tasks after the batch delete");
  step("batch create/complete/delete; one bad item -> 400/404 and nothing applied");

  const key = { "Idempotency-Key": crypto.randomUUID() };
  const first = await ann.POST(tasksPath, { params: { path: user, header: key }, body: { title: "once" } });
  const again = await ann.POST(tasksPath, { params: { path: user, header: key }, body: { title: "once" } });
  same(ok(again, 201), ok(first, 201), "the replayed task");
  same(header(again.response, "Idempotent-Replayed"), "true", "Idempotent-Replayed");
  same(header(again.response, "Location"), header(first.response, "Location"), "the replayed Location");
  same(first.response.headers.get("Idempotent-Replayed"), null, "Idempotent-Replayed on the first");
  fails(await ann.POST(tasksPath, { params: { path: user, header: key }, body: { title: "twice" } }), 422);
  same((await listed()).total, 5, "tasks after the replay");
  step("Idempotency-Key: replay (Idempotent-Replayed), other body -> 422");

  fails(await bob.GET(tasksPath, { params: { path: user } }), 403);
  const gone = fails(await ann.GET(taskPath, { params: at(MISSING_ID) }), 404);
  check(gone.detail.includes(String(MISSING_ID)), `detail ${gone.detail}`);
  const bad = fails(await ann.POST(tasksPath, { params: { path: user }, body: { title: "" } }), 400);
  same(bad.errors?.map((error) => error.field), ["title"], "the fields in error");
  const unauthorized = await bearer(baseUrl, "not-a-token").GET(tasksPath, { params: { path: user } });
  fails(unauthorized, 401);
  check(header(unauthorized.response, "WWW-Authenticate").startsWith("Bearer"), "WWW-Authenticate");
  fails(await ann.DELETE(taskPath, { params: ifMatch(charlie.id, '"stale"') }), 412);
  empty(await ann.DELETE(taskPath, { params: at(charlie.id) }), 204);
  fails(await ann.GET(taskPath, { params: at(charlie.id) }), 404);
  step("error bodies: 403 other user, 404 missing, 400 bad body, 401 bad token, 412 delete; delete 204");

  const mirror = new Map<number, TaskOut>();
  for (let since = feedStart.next_since, more = true; more; ) {
    const changes = ok(await ann.GET(changesPath, { params: { path: user, query: { since, limit: 3 } } }), 200);
    for (const task of changes.items) mirror.set(task.id, task);
    for (const id of changes.deleted) mirror.delete(id);
    [since, more] = [changes.next_since, changes.has_more];
  }
  const walked: TaskOut[] = [];
  for (let page = await listed({ limit: 2 }); ; page = await listed({ limit: 2, cursor: page.next_cursor })) {
    walked.push(...page.items);
    if (page.next_cursor === null) break;
  }
  same(walked.length, mirror.size, "tasks walked by cursor");
  same(new Map(walked.map((task) => [task.id, task])), mirror, "the tasks the feed replayed");
  const listing = await ann.GET(tasksPath, { params: { path: user } });
  const current = { path: user, header: { "If-None-Match": header(listing.response, "ETag") } };
  empty(await ann.GET(tasksPath, { params: current }), 304);
  step("changes feed replays every change; cursor walk reads each task once; list ETag -> 304");

  const renewed = ok(await pub.POST("/api/v1/auth/refresh", { body: { refresh_token: pair.refresh_token } }), 200);
  check(renewed.refresh_token !== pair.refresh_token, "the refresh token did not rotate");
  fails(await pub.POST("/api/v1/auth/refresh", { body: { refresh_token: pair.refresh_token } }), 401);
  fails(await pub.POST("/api/v1/auth/refresh", { body: { refresh_token: renewed.refresh_token } }), 401);
  step("refresh; reusing a refresh token -> 401 and the family revoked");

  const session = await account(baseUrl, "cid");
  empty(await bearer(baseUrl, session.access_token).POST("/api/v1/auth/logout"), 204);
  fails(await pub.POST("/api/v1/auth/refresh", { body: { refresh_token: session.refresh_token } }), 401);
  step("logout with the bearer token only -> 204, its refresh token stops working");
}

check(everySort, "SORTS lists every sort");
await main(process.argv[2] ?? "http://127.0.0.1:8000");
