package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresReader reads a PostgreSQL server with two queries that a role
// with no privilege beyond CONNECT may run (pg_stat_replication shows its
// lag columns to members of pg_monitor; docs/database.md). The session is
// read-only.
type PostgresReader struct{}

// ReadServer connects to host, bounded by ctx's deadline, and asks
// pg_is_in_recovery() and, on a primary, pg_stat_replication.
func (PostgresReader) ReadServer(ctx context.Context, dsn *DatastoreDSN, host string) (SQLServerState, error) {
	var st SQLServerState
	cfg, err := pgx.ParseConfig(dsn.HostURL(host))
	if err != nil {
		return st, fmt.Errorf("connection settings: %s", dsn.scrub(err.Error()))
	}
	if dl, ok := ctx.Deadline(); ok {
		cfg.ConnectTimeout = time.Until(dl)
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.RuntimeParams["application_name"] = "kubectl-dc"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return st, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&st.InRecovery); err != nil {
		return st, fmt.Errorf("pg_is_in_recovery(): %w", err)
	}
	if st.InRecovery {
		return st, nil
	}
	rows, err := conn.Query(ctx, `SELECT coalesce(host(client_addr), ''), coalesce(application_name, ''), coalesce(state, ''),
		extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication`)
	if err != nil {
		return st, fmt.Errorf("pg_stat_replication: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ReplicationRow
		var lag *float64
		if err := rows.Scan(&r.ClientAddr, &r.ApplicationName, &r.State, &lag); err != nil {
			return st, fmt.Errorf("pg_stat_replication: %w", err)
		}
		if lag != nil {
			d := time.Duration(*lag * float64(time.Second))
			r.ReplayLag = &d
		}
		st.Replication = append(st.Replication, r)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("pg_stat_replication: %w", err)
	}
	return st, nil
}
