package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/loopback"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/nemesis"
	"github.com/dlog-io/dlog/namespace"
)

// Names of the dlog cluster and namespace the harness uses.
const (
	clusterName   = "verify"
	namespaceName = "verify"
	// harnessSource is the harness's own name on the fault links.
	harnessSource = "harness"
)

// ClusterConfig is the shape of a test cluster: every component a process
// on loopback, every connection through a fault link.
type ClusterConfig struct {
	// Dir holds the data directories (etcd-i, bookie-i) and logs/.
	Dir string
	// Binary is the dlog binary.
	Binary string
	// Etcd is the number of etcd members (1 or 3). Default 1.
	Etcd int
	// Bookies is the number of bookies. Default 3.
	Bookies int
	// Owners is the number of owner processes: writer agents (target
	// "embedded") or dlog proxies (target "proxy"). Default 2.
	Owners int
	// Target is "embedded" (writer agents embedding the library; the
	// harness reads with the library) or "proxy" (dlog proxy processes;
	// the harness writes and reads through the client package). Default
	// "embedded".
	Target string
	// EnsembleSize, WriteQuorum, AckQuorum of new segments. Default 3/3/2.
	EnsembleSize, WriteQuorum, AckQuorum int
	// SegmentRollBytes rolls segments at this size (0: library default).
	SegmentRollBytes int64
	// SessionTTL is the agents' writer-lock lease. Default 2 s.
	SessionTTL time.Duration
	// GCInterval is how often agents or proxies collect truncated
	// segments (0: their default).
	GCInterval time.Duration
	// BookieArgs are extra flags of every bookie; BookieArgsFor adds
	// flags for bookie i only.
	BookieArgs    []string
	BookieArgsFor func(i int) []string
	// BookieEnvFor adds environment variables (e.g. DLOG_FAILPOINTS) to
	// bookie i's process, on every start.
	BookieEnvFor func(i int) []string
	// AgentAddTimeout bounds one add of an agent or proxy to one bookie
	// (0: library default, 5 s). Scenarios that delay links raise it so that slowness
	// is not taken for failure.
	AgentAddTimeout time.Duration
	// Bugs are bug switches (DLOG_BUGS) of every process; the binary must
	// be built with -tags dlogbugs.
	Bugs []string
	// Logger receives the harness's own progress lines; nil discards.
	Logger *slog.Logger
}

// Validate reports a configuration that cannot run.
func (c ClusterConfig) Validate() error {
	c.defaults()
	if c.Target != TargetEmbedded && c.Target != TargetProxy {
		return fmt.Errorf("verify: target %q: want %s or %s", c.Target, TargetEmbedded, TargetProxy)
	}
	return nil
}

func (c *ClusterConfig) defaults() {
	if c.Etcd == 0 {
		c.Etcd = 1
	}
	if c.Bookies == 0 {
		c.Bookies = 3
	}
	if c.Owners == 0 {
		c.Owners = 2
	}
	if c.Target == "" {
		c.Target = TargetEmbedded
	}
	if c.EnsembleSize == 0 {
		c.EnsembleSize, c.WriteQuorum, c.AckQuorum = 3, 3, 2
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 2 * time.Second
	}
}

// Bookie is one bookie process.
type Bookie struct {
	Proc *nemesis.Process
	// ID is the bookie's current identity (it changes when a wiped bookie
	// is replaced).
	ID    string
	Dir   string
	Port  int
	Front *nemesis.Front
	gen   int
}

// Targets (ClusterConfig.Target).
const (
	TargetEmbedded = "embedded"
	TargetProxy    = "proxy"
)

// Owner is one process that owns logs: a writer agent or a dlog proxy.
type Owner struct {
	Proc *nemesis.Process
	Name string
	// Front is the fault proxy in front of a dlog proxy's API (nil for
	// agents, which only the harness calls).
	Front *nemesis.Front
}

// Addr returns the agent's HTTP address (or the proxy's advertised API
// address) from its last ready line.
func (a *Owner) Addr() string {
	var v struct {
		Addr      string `json:"addr"`
		Advertise string `json:"advertise"`
	}
	_ = json.Unmarshal(a.Proc.ReadyLine(), &v)
	if v.Advertise != "" {
		return v.Advertise
	}
	return v.Addr
}

// Cluster is a running test cluster.
type Cluster struct {
	cfg     ClusterConfig
	log     *slog.Logger
	Sup     *nemesis.Supervisor
	Net     *nemesis.Net
	Etcd    []*nemesis.Process
	etcdCli []string // real client URLs of the members
	Bookies []*Bookie
	Owners  []*Owner
	// Store and NS are the harness's own metadata store and namespace
	// (readers, drain, final seal), on links named "harness".
	Store *metadata.KVStore
	NS    *namespace.Namespace
}

// StartCluster starts etcd, the bookies, the harness's namespace and the
// agents, in that order. On error everything started is stopped.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	c := &Cluster{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	env := []string{}
	if len(cfg.Bugs) > 0 {
		env = append(env, "DLOG_BUGS="+strings.Join(cfg.Bugs, ","))
	}
	c.Sup, err = nemesis.NewSupervisor(nemesis.SupervisorConfig{
		Binary: cfg.Binary, LogDir: filepath.Join(cfg.Dir, "logs"), Env: env, Logger: c.log,
	})
	if err != nil {
		return nil, err
	}
	c.Net = nemesis.NewNet(nemesis.NetConfig{Names: c.Sup.PIDNames, SelfName: harnessSource, Logger: c.log})
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := c.startBookies(ctx); err != nil {
		return nil, err
	}
	if c.Store, err = metadata.Open(ctx, c.MetadataURL(harnessSource), metadata.Options{Cluster: clusterName}); err != nil {
		return nil, err
	}
	nc := namespace.DefaultConfig("")
	nc.Store = c.Store
	nc.Namespace = namespaceName
	nc.OwnerID = harnessSource
	nc.EnsembleSize, nc.WriteQuorum, nc.AckQuorum = cfg.EnsembleSize, cfg.WriteQuorum, cfg.AckQuorum
	nc.SessionTTL = cfg.SessionTTL
	nc.GCInterval = 0 // agents collect; the harness only reads
	nc.ReaderRelistInterval = time.Second
	lc := ledger.DefaultConfig()
	routes, err := c.bookieRoutes(harnessSource)
	if err != nil {
		return nil, err
	}
	lc.ResolveAddress = func(id, registered string) string {
		if a, ok := routes[id]; ok {
			return a
		}
		return registered
	}
	nc.LedgerConfig = &lc
	if c.NS, err = namespace.Open(ctx, nc); err != nil {
		return nil, err
	}
	if err := c.startOwners(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// freePorts returns n loopback ports that were free a moment ago, below
// the ephemeral range so that no fault link listening on port 0 takes one
// while its process is down.
func freePorts(n int) ([]int, error) { return loopback.Ports(n) }

func etcdName(i int) string   { return fmt.Sprintf("etcd-%d", i) }
func bookieName(i int) string { return fmt.Sprintf("bookie-%d", i) }
func agentName(i int) string  { return fmt.Sprintf("agent-%d", i) }

func (c *Cluster) startEtcd(ctx context.Context) error {
	n := c.cfg.Etcd
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	specs := make([]nemesis.Spec, n)
	for i := range n {
		dir := filepath.Join(c.cfg.Dir, etcdName(i))
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		c.etcdCli = append(c.etcdCli, client)
		args := []string{"etcd", "-o", "json", "--name", fmt.Sprintf("m%d", i), "--dir", dir,
			"--listen-client", client, "--listen-peer", fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			"--initial-cluster", strings.Join(initial, ",")}
		if n > 1 {
			// Several members on a loaded machine: rarer spurious elections.
			args = append(args, "--tick-ms", "50", "--election-ms", "1000")
		}
		specs[i] = nemesis.Spec{Name: etcdName(i), Args: args, DataDirs: []string{dir}}
		if _, err := c.Net.AddFront(etcdName(i), strings.TrimPrefix(client, "http://")); err != nil {
			return err
		}
	}
	// Members of a new cluster become ready together.
	c.Etcd = make([]*nemesis.Process, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			c.Etcd[i], errs[i] = c.Sup.Start(sctx, specs[i])
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// MetadataURL is the metadata URL for process src: every etcd member
// through src's own links.
func (c *Cluster) MetadataURL(src string) string {
	var eps []string
	for i := range c.cfg.Etcd {
		a, err := c.Net.Front(etcdName(i)).AddrFor(src)
		if err != nil {
			continue
		}
		eps = append(eps, "http://"+a)
	}
	return strings.Join(eps, ",")
}

func (c *Cluster) bookieRoutes(src string) (map[string]string, error) {
	out := make(map[string]string)
	for _, b := range c.Bookies {
		a, err := b.Front.AddrFor(src)
		if err != nil {
			return nil, err
		}
		out[b.ID] = a
	}
	return out, nil
}

func (c *Cluster) bookieSpec(b *Bookie, name string) nemesis.Spec {
	i := 0
	for k, x := range c.Bookies {
		if x == b {
			i = k
		}
	}
	args := []string{"bookie", "-o", "json", "--dir", b.Dir, "--listen", fmt.Sprintf("127.0.0.1:%d", b.Port),
		"--advertise", b.Front.Addr(), "--id", b.ID, "--metadata", c.MetadataURL(name), "--cluster", clusterName,
		"--session-ttl", "3s"}
	args = append(args, c.cfg.BookieArgs...)
	if c.cfg.BookieArgsFor != nil {
		args = append(args, c.cfg.BookieArgsFor(i)...)
	}
	var env []string
	if c.cfg.BookieEnvFor != nil {
		env = c.cfg.BookieEnvFor(i)
	}
	return nemesis.Spec{Name: name, Args: args, Env: env, DataDirs: []string{b.Dir}}
}

func (c *Cluster) startBookies(ctx context.Context) error {
	n := c.cfg.Bookies
	ports, err := freePorts(n)
	if err != nil {
		return err
	}
	c.Bookies = make([]*Bookie, n)
	for i := range n {
		name := bookieName(i)
		f, err := c.Net.AddFront(name, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		if err != nil {
			return err
		}
		c.Bookies[i] = &Bookie{ID: name, Dir: filepath.Join(c.cfg.Dir, name), Port: ports[i], Front: f}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, b := range c.Bookies {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			b.Proc, errs[i] = c.Sup.Start(sctx, c.bookieSpec(b, bookieName(i)))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) agentSpec(i int) (nemesis.Spec, error) {
	name := agentName(i)
	routes, err := c.bookieRoutes(name)
	if err != nil {
		return nemesis.Spec{}, err
	}
	var rs []string
	for id, a := range routes {
		rs = append(rs, id+"="+a)
	}
	args := []string{"verify-agent", "-o", "json", "--name", name, "--metadata", c.MetadataURL(name),
		"--cluster", clusterName, "--namespace", namespaceName, "--bookie-routes", strings.Join(rs, ","),
		"--ensemble-size", strconv.Itoa(c.cfg.EnsembleSize), "--write-quorum", strconv.Itoa(c.cfg.WriteQuorum),
		"--ack-quorum", strconv.Itoa(c.cfg.AckQuorum), "--session-ttl", c.cfg.SessionTTL.String()}
	return nemesis.Spec{Name: name, Args: append(args, c.namespaceArgs()...)}, nil
}

func proxyName(i int) string { return fmt.Sprintf("proxy-%d", i) }

// proxySpec runs a dlog proxy on a fixed port behind its own front, which
// it advertises: clients reach it through fault links, and it reaches
// etcd through its own links and the bookies through their shared
// listeners (attributed to it by pid).
func (c *Cluster) proxySpec(i int, front *nemesis.Front, port int) nemesis.Spec {
	name := proxyName(i)
	args := []string{"proxy", "-o", "json", "--metadata", c.MetadataURL(name), "--cluster", clusterName,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--advertise", front.Addr(), "--id", name,
		"--namespace", namespaceName, "--session-ttl", c.cfg.SessionTTL.String(),
		"--ensemble-size", strconv.Itoa(c.cfg.EnsembleSize), "--write-quorum", strconv.Itoa(c.cfg.WriteQuorum),
		"--ack-quorum", strconv.Itoa(c.cfg.AckQuorum)}
	return nemesis.Spec{Name: name, Args: append(args, c.namespaceArgs()...)}
}

// namespaceArgs are the segment, collector and add settings of the
// scenario, the same for writer agents and proxies.
func (c *Cluster) namespaceArgs() []string {
	var args []string
	if c.cfg.SegmentRollBytes > 0 {
		args = append(args, "--segment-roll-bytes", strconv.FormatInt(c.cfg.SegmentRollBytes, 10))
	}
	if c.cfg.GCInterval > 0 {
		args = append(args, "--gc-interval", c.cfg.GCInterval.String())
	}
	if c.cfg.AgentAddTimeout > 0 {
		args = append(args, "--add-timeout", c.cfg.AgentAddTimeout.String())
	}
	return args
}

func (c *Cluster) startOwners(ctx context.Context) error {
	n := c.cfg.Owners
	c.Owners = make([]*Owner, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var ports []int
	if c.cfg.Target == TargetProxy {
		var err error
		if ports, err = freePorts(n); err != nil {
			return err
		}
	}
	for i := range n {
		var spec nemesis.Spec
		var front *nemesis.Front
		if c.cfg.Target == TargetProxy {
			f, err := c.Net.AddFront(proxyName(i), fmt.Sprintf("127.0.0.1:%d", ports[i]))
			if err != nil {
				return err
			}
			front, spec = f, c.proxySpec(i, f, ports[i])
		} else {
			var err error
			if spec, err = c.agentSpec(i); err != nil {
				return err
			}
		}
		c.Owners[i] = &Owner{Name: spec.Name, Front: front}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			c.Owners[i].Proc, errs[i] = c.Sup.Start(sctx, spec)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// OwnerByName returns the named agent, or nil.
func (c *Cluster) OwnerByName(name string) *Owner {
	for _, a := range c.Owners {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// BookieByID returns the bookie with the given current id, or nil.
func (c *Cluster) BookieByID(id string) *Bookie {
	for _, b := range c.Bookies {
		if b.ID == id {
			return b
		}
	}
	return nil
}

// RestartBookie restarts a stopped bookie on its directory and port.
func (c *Cluster) RestartBookie(ctx context.Context, b *Bookie) error {
	return b.Proc.Restart(ctx)
}

// ReplaceBookie starts a stopped bookie whose disk was lost as a new
// identity (id "<old>-g<n>") at the same address, like an operator
// replacing a failed disk: its old identity is refused by its cookie.
func (c *Cluster) ReplaceBookie(ctx context.Context, b *Bookie) error {
	if b.Proc.Running() {
		return nemesis.ErrRunning
	}
	b.gen++
	b.ID = fmt.Sprintf("%s-g%d", b.Proc.Name(), b.gen)
	name := fmt.Sprintf("%s-g%d", b.Proc.Name(), b.gen)
	spec := c.bookieSpec(b, name)
	// The replacement keeps the same fault links (same front, same
	// process slot): rules naming the old process name still apply.
	p, err := c.Sup.Start(ctx, spec)
	if err != nil {
		return err
	}
	b.Proc = p
	return nil
}

// EtcdLeader returns the index of the etcd member that leads, or -1.
func (c *Cluster) EtcdLeader(ctx context.Context) int {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.etcdCli, DialTimeout: 2 * time.Second, Logger: zapNop()})
	if err != nil {
		return -1
	}
	defer cli.Close()
	for i, ep := range c.etcdCli {
		if !c.Etcd[i].Running() || c.Etcd[i].Paused() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// StealLock deletes log's writer lock key in etcd, as an operator
// forcing a release would: the owner loses the log without being told
// (it learns it from a watch it may not receive, or from fencing). The
// key is /dlog/<cluster>/logdata/<namespace>/<log>/lock (docs of package
// metadata).
func (c *Cluster) StealLock(ctx context.Context, log string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.etcdCli, DialTimeout: 2 * time.Second, Logger: zapNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	key := "/dlog/" + clusterName + "/logdata/" + namespaceName + "/" + log + "/lock"
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Delete(sctx, key)
	if err != nil {
		return err
	}
	if resp.Deleted != 1 {
		return fmt.Errorf("steal lock of %s: no lock key %s", log, key)
	}
	return nil
}

// OwnerOf returns the agent that owns log (from the lock key), or nil.
func (c *Cluster) OwnerOf(ctx context.Context, log string) *Owner {
	o, ok, err := c.Store.GetOwner(ctx, namespaceName, log)
	if err != nil || !ok {
		return nil
	}
	return c.OwnerByName(agentOfEpoch(o.ID))
}

// agentOfEpoch returns the agent name of a writer epoch "agent-1.p9.w3".
func agentOfEpoch(epoch string) string {
	if i := strings.IndexByte(epoch, '.'); i >= 0 {
		return epoch[:i]
	}
	return epoch
}

// Close stops the harness's namespace, every process and every link.
func (c *Cluster) Close() {
	if c.NS != nil {
		c.NS.Close()
	}
	if c.Store != nil {
		c.Store.Close()
	}
	if c.Sup != nil {
		_ = c.Sup.Close()
	}
	if c.Net != nil {
		c.Net.Close()
	}
}

// Processes returns the names of every process of the cluster.
func (c *Cluster) Processes() []string {
	var out []string
	for _, p := range c.Sup.Processes() {
		out = append(out, p.Name())
	}
	return out
}

// keepDirs lists what a failing run keeps (everything under Dir).
func (c *Cluster) keepDirs() []string {
	ents, _ := os.ReadDir(c.cfg.Dir)
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(c.cfg.Dir, e.Name()))
	}
	return out
}
