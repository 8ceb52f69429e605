package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kubectl-dc/kubectl-dc/test/ports"
)

// The kine datastore: the two-datacenter design that replaces etcd by kine
// writing to one PostgreSQL primary, with a streaming replica in the other
// datacenter that an operator (or a script) promotes when the primary's
// datacenter is lost. Each datacenter's first control-plane node runs a
// PostgreSQL server on its own address (the first datacenter's the primary,
// the others replicas), and every API server node a kine that the API
// server dials over plain gRPC, as k3s runs it. kine has mirror pods
// (component=kine), etcd none.

// ReadOnlyRole is the database role status reads with (docs/database.md):
// pg_monitor, a password, read-only sessions.
const ReadOnlyRole = "kubectl-dc-ro"

// Database is one PostgreSQL server of a kine topology.
type Database struct {
	Datacenter string `json:"datacenter"`
	// Node is the control-plane node whose address it listens on.
	Node string `json:"node"`
	// Address is host:port.
	Address string `json:"address"`
	Dir     string `json:"dir"`
	// Primary is true for a server started or promoted as primary.
	Primary bool `json:"primary"`
}

// KinePostgres is two datacenters whose API servers store in kine over a
// PostgreSQL primary in pod-1 and its streaming replica in pod-2.
func KinePostgres() Topology {
	return Topology{Kine: true, Datacenters: []Datacenter{
		{Name: "pod-1", Workers: 1, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-2", Workers: 1, ControlPlanes: 1, APIServers: 1},
	}}
}

func pgProc(dc string) string     { return "postgres-" + dc }
func kineProc(node string) string { return "kine-" + node }

// postgresBin finds the PostgreSQL server binaries of the Debian packages
// (make test-deps installs them), the newest version first.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server under /usr/lib/postgresql/*/bin: run make test-deps (Debian package postgresql)")
}

// EnsureKine builds kine from test/tools/kine, or finds it in its own
// cache, and returns its path.
func EnsureKine(ctx context.Context) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "build-control-plane.sh"), "kine")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build kine: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// pgUser is the uid PostgreSQL runs as: nobody when this process is root
// (PostgreSQL refuses to run as root), else this process's own.
func pgUser() uint32 {
	if os.Geteuid() == 0 {
		return 65534
	}
	return 0
}

// runAsPG runs a PostgreSQL tool as pgUser and returns its output on
// failure.
func runAsPG(ctx context.Context, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "/"
	if uid := pgUser(); uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return nil
}

// startDatastore starts the PostgreSQL servers and the kine of every API
// server node.
func (c *Cluster) startDatastore(ctx context.Context, nodes []node) error {
	pgbin, err := postgresBin()
	if err != nil {
		return err
	}
	kine, err := EnsureKine(ctx)
	if err != nil {
		return err
	}
	c.PGBin, c.KineBin = pgbin, kine
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	c.DatabasePassword = hex.EncodeToString(b)
	root := filepath.Join(c.Dir, "postgres")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if uid := pgUser(); uid != 0 {
		// nobody must reach its data directories inside the cluster's.
		if err := os.Chmod(c.Dir, 0o711); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if !n.ControlPlane || c.databaseIn(n.Datacenter) != nil {
			continue
		}
		port := ports.Free()
		if port == 0 {
			return errors.New("no free loopback port")
		}
		c.Databases = append(c.Databases, Database{Datacenter: n.Datacenter, Node: n.Name, Address: fmt.Sprintf("%s:%d", n.IP, port), Dir: filepath.Join(root, n.Datacenter)})
	}
	primary := &c.Databases[0]
	primary.Primary = true
	if err := c.initPrimary(ctx, primary); err != nil {
		return err
	}
	for i := 1; i < len(c.Databases); i++ {
		if err := c.initReplica(ctx, &c.Databases[i], primary); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if !n.APIServer {
			continue
		}
		port := ports.Free()
		if port == 0 {
			return errors.New("no free loopback port")
		}
		c.KineURLs[n.Name] = fmt.Sprintf("http://%s:%d", n.IP, port)
		p := &process{Name: kineProc(n.Name), Bin: kine, Args: c.kineArgs(n.Name, primary.Address)}
		c.Procs[p.Name] = p
		if err := p.start(filepath.Join(c.Dir, "logs"), c.detach); err != nil {
			return err
		}
		// One at a time: two kines creating the schema at once collide
		// (duplicate key in pg_class); once one listens, it exists.
		if err := waitListen(urlHost(c.KineURLs[n.Name]), p); err != nil {
			return fmt.Errorf("kine on %s: %w", n.Name, err)
		}
	}
	return nil
}

// kineArgs are the flags of node's kine, writing to the database at
// primary.
func (c *Cluster) kineArgs(node, primary string) []string {
	return []string{
		"--endpoint=" + kineEndpoint(primary),
		"--listen-address=" + urlHost(c.KineURLs[node]),
		"--metrics-bind-address=0",
	}
}

func kineEndpoint(primary string) string {
	return "postgres://postgres@" + primary + "/kine?sslmode=disable"
}

func (c *Cluster) databaseIn(dc string) *Database {
	for i := range c.Databases {
		if c.Databases[i].Datacenter == dc {
			return &c.Databases[i]
		}
	}
	return nil
}

// pgConf is what every server adds to postgresql.conf: its address, no
// Unix socket, streaming replication, and no durability (test substrate).
func pgConf(addr string) string {
	host, port, _ := strings.Cut(addr, ":")
	return fmt.Sprintf(`
listen_addresses = '%s'
port = %s
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
fsync = off
full_page_writes = off
synchronous_commit = off
shared_buffers = '32MB'
log_min_messages = warning
`, host, port)
}

// pgHBA lets the read-only role in by password, everyone else on loopback
// by trust (kine and replication).
const pgHBA = `host all ` + ReadOnlyRole + ` 127.0.0.0/8 scram-sha-256
host all all 127.0.0.0/8 trust
host replication all 127.0.0.0/8 trust
`

func (c *Cluster) initPrimary(ctx context.Context, db *Database) error {
	if err := c.pgDir(db.Dir); err != nil {
		return err
	}
	if err := runAsPG(ctx, filepath.Join(c.PGBin, "initdb"), "-D", db.Dir, "-U", "postgres", "--auth=trust", "-N"); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(db.Dir, "postgresql.conf"), pgConf(db.Address)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(db.Dir, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return err
	}
	if err := c.startPG(db); err != nil {
		return err
	}
	conn, err := pgConnect(ctx, db.Address, "postgres")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for _, q := range []string{
		"CREATE DATABASE kine",
		fmt.Sprintf(`CREATE ROLE %q LOGIN PASSWORD '%s' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION`, ReadOnlyRole, c.DatabasePassword),
		fmt.Sprintf(`ALTER ROLE %q SET default_transaction_read_only = on`, ReadOnlyRole),
		fmt.Sprintf(`GRANT pg_monitor TO %q`, ReadOnlyRole),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("primary %s: %s: %w", db.Address, strings.SplitN(q, " PASSWORD", 2)[0], err)
		}
	}
	return nil
}

func (c *Cluster) initReplica(ctx context.Context, db, primary *Database) error {
	if err := c.pgDir(db.Dir); err != nil {
		return err
	}
	host, port, _ := strings.Cut(primary.Address, ":")
	if err := runAsPG(ctx, filepath.Join(c.PGBin, "pg_basebackup"), "-h", host, "-p", port, "-U", "postgres", "-D", db.Dir, "-X", "stream", "-R", "-c", "fast"); err != nil {
		return err
	}
	// The copy has the primary's address: the replica's own, and a
	// primary_conninfo whose application_name is its address, so that the
	// primary's pg_stat_replication names it.
	myHost, _, _ := strings.Cut(db.Address, ":")
	conf := pgConf(db.Address) + fmt.Sprintf("primary_conninfo = 'host=%s port=%s user=postgres application_name=%s'\n", host, port, myHost)
	if err := appendFile(filepath.Join(db.Dir, "postgresql.auto.conf"), conf); err != nil {
		return err
	}
	return c.startPG(db)
}

// pgDir creates a data directory owned by pgUser.
func (c *Cluster) pgDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if uid := pgUser(); uid != 0 {
		return os.Chown(dir, int(uid), int(uid))
	}
	return nil
}

func (c *Cluster) startPG(db *Database) error {
	p := c.Procs[pgProc(db.Datacenter)]
	if p == nil {
		p = &process{Name: pgProc(db.Datacenter), Bin: filepath.Join(c.PGBin, "postgres"), Args: []string{"-D", db.Dir}, UID: pgUser()}
		c.Procs[p.Name] = p
	}
	if err := p.start(filepath.Join(c.Dir, "logs"), c.detach); err != nil {
		return err
	}
	if err := waitListen(db.Address, p); err != nil {
		return fmt.Errorf("postgres in %s: %w", db.Datacenter, err)
	}
	// Listening is not accepting: wait until a session opens.
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgConnect(ctx, db.Address, "postgres")
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		if ctx.Err() != nil || !p.running() {
			return fmt.Errorf("postgres in %s does not accept sessions: %w", db.Datacenter, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pgConnect opens a superuser session (trust on loopback).
func pgConnect(ctx context.Context, addr, database string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.Connect(cctx, "postgres://postgres@"+addr+"/"+database+"?sslmode=disable")
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// DatastoreDSN is the DSN status reads the database with: the read-only
// role, its password, every server.
func (c *Cluster) DatastoreDSN() string {
	var hosts []string
	for _, db := range c.Databases {
		hosts = append(hosts, db.Address)
	}
	return fmt.Sprintf("postgres://%s:%s@%s/kine?sslmode=disable", ReadOnlyRole, c.DatabasePassword, strings.Join(hosts, ","))
}

// DatabaseList returns the PostgreSQL servers, the first started as
// primary.
func (c *Cluster) DatabaseList() []Database {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Database{}, c.Databases...)
}

// PromoteReplica promotes the replica of datacenter dc (SELECT
// pg_promote(); nothing when it is a primary already), as the two-datacenter design's script does when the
// primary's datacenter is lost. With repoint, every running kine is
// restarted to write to it, as that script also does; without, and with the
// old primary still running, the cluster has two primaries: a split brain.
func (c *Cluster) PromoteReplica(ctx context.Context, dc string, repoint bool) error {
	db := c.databaseIn(dc)
	if db == nil {
		return fmt.Errorf("no database in datacenter %q", dc)
	}
	conn, err := pgConnect(ctx, db.Address, "postgres")
	if err != nil {
		return fmt.Errorf("promote %s: %w", db.Address, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var replica bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&replica); err != nil {
		return fmt.Errorf("promote %s: %w", db.Address, err)
	}
	if replica {
		// Already promoted (a split brain made earlier): only repoint.
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil || !ok {
			return fmt.Errorf("promote %s: pg_promote() = %v: %w", db.Address, ok, err)
		}
	}
	db.Primary = true
	if repoint {
		for node := range c.KineURLs {
			p := c.Procs[kineProc(node)]
			wasRunning := p.running()
			if err := p.stop(stopGrace); err != nil {
				return err
			}
			p.Args = c.kineArgs(node, db.Address)
			if !wasRunning {
				continue
			}
			if err := p.start(filepath.Join(c.Dir, "logs"), c.detach); err != nil {
				return err
			}
			if err := waitListen(urlHost(c.KineURLs[node]), p); err != nil {
				return fmt.Errorf("kine on %s: %w", node, err)
			}
		}
		if err := c.waitAPIServersUp(ctx); err != nil {
			return err
		}
		c.markDownAgain(ctx)
	}
	return c.saveState()
}

// primaryAddress is the address of the first server marked primary.
func (c *Cluster) primaryAddress() string {
	for _, db := range c.Databases {
		if db.Primary {
			return db.Address
		}
	}
	return ""
}

// kineAPIServerArgs points an API server at its node's kine: plain gRPC,
// no etcd client certificate.
func kineAPIServerArgs(args []string, kineURL string) []string {
	var out []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--etcd-servers="):
			out = append(out, "--etcd-servers="+kineURL)
		case strings.HasPrefix(a, "--etcd-cafile="), strings.HasPrefix(a, "--etcd-certfile="), strings.HasPrefix(a, "--etcd-keyfile="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// waitAPIServersUp waits until every running API server is ready.
func (c *Cluster) waitAPIServersUp(ctx context.Context) error {
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	for _, a := range c.APIServers {
		if p := c.Procs[apiProc(a.Node)]; p != nil && p.running() {
			if err := waitHTTP(ctx, a.URL+"/readyz", hc, p); err != nil {
				return fmt.Errorf("kube-apiserver on %s: %w", a.Node, err)
			}
		}
	}
	return nil
}
