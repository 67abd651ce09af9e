// The typed configuration, derived from the option table: what an embedder may give, and what parsing yields.
import type { OPTIONS } from "./options.ts";

type Table = typeof OPTIONS;

type ValueOf<D> = D extends { kind: "count" } ? number
  : D extends { kind: "bool" } ? boolean
  : D extends { kind: "enum"; values: readonly (infer V)[] } ? V
  : D extends { kind: "cidrs" } ? string[]
  : string;

type UseOf<D> = D extends { use: infer U } ? U : "app";

/** Keys of T that are fields of the given use (tolerated keys and parse-only options are nobody's field). */
type FieldKeys<T, U> = {
  [K in keyof T]: T[K] extends { kind: "tolerated" } ? never : UseOf<T[K]> extends U ? K : never;
}[keyof T];

type Flatten<T> = { [K in keyof T]: T[K] };

/** Keys of T whose fields must be present, given what is always there. */
type PresentKeys<T, Always> = { [K in keyof T]: T[K] extends Always ? K : never }[keyof T];

type Present<T, U, Always> = Extract<FieldKeys<T, U>, PresentKeys<T, Always>>;
type Optional<T, U, Always> = Exclude<FieldKeys<T, U>, PresentKeys<T, Always>>;

/** The object type of a table (or a group's fields): one field per declaration of use U, nested for groups. */
type Fields<T, U, Always> = Flatten<
  & { -readonly [K in keyof T as K extends Present<T, U, Always> ? K : never]: FieldValue<T[K], Always> }
  & { -readonly [K in keyof T as K extends Optional<T, U, Always> ? K : never]?: FieldValue<T[K], Always> }
>;

type FieldValue<D, Always> = D extends { fields: infer F } ? Fields<F, "app", Always> : ValueOf<D>;

/** What an embedder gives: every option field optional, save the required ones. */
type Given = { required: true };
/** What parsing yields: defaults filled in, groups that are always there present. */
type Parsed = { required: true } | { default: unknown } | { when: "always" };

/** The option fields of AppOptions (src/app.ts), as an embedder gives them; AppOptions adds the embedder's hooks. */
export type OptionFields = Fields<Table, "app", Given>;

/** The fields only the server program reads: where it listens, how long it drains, the policy file. */
export type ServeFields = Fields<Table, "serve", Parsed>;

/** What parseConfig yields: the option fields of AppOptions with defaults filled in, and the server's own fields. */
export type NodeConfig = Flatten<Fields<Table, "app", Parsed> & ServeFields>;
