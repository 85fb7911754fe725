/** Table types of go-live (migration 0011_golive), joined to the store's `Database` with `withTables`. */
export interface GoLiveRequestTable {
  id: string;
  /** The sandbox application that asks to go live. */
  application_id: string;
  account_id: string;
  service_id: string;
  /** requested | approved | rejected | revoked */
  state: string;
  note: string;
  decision_comment: string;
  /** The production application approval made. */
  production_application_id: string | null;
  requested_at: string;
  decided_at: string | null;
  revoked_at: string | null;
  /** When the partner collected the first production key (shown once). */
  key_collected_at: string | null;
  updated_at: string;
}

export type GoLiveTables = {
  golive_requests: GoLiveRequestTable;
};
