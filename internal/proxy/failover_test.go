package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/metadata"
)

// ackLog records acknowledged writes by payload.
type ackLog struct {
	mu    sync.Mutex
	acked map[string]dlog.DLSN
	n     atomic.Int64
}

func newAckLog() *ackLog { return &ackLog{acked: make(map[string]dlog.DLSN)} }

func (a *ackLog) add(k string, d dlog.DLSN) {
	a.mu.Lock()
	a.acked[k] = d
	a.mu.Unlock()
	a.n.Add(1)
}

func (a *ackLog) snapshot() map[string]dlog.DLSN {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]dlog.DLSN, len(a.acked))
	for k, v := range a.acked {
		out[k] = v
	}
	return out
}

// writers runs n goroutines writing tagged records (producer w<i>,
// sequence = the record's number) until stop, each retrying a record whose
// outcome is unknown with the same tag until it is acknowledged: the
// exactly-once pattern. They return once stopped.
func startWriters(ctx context.Context, c *client.Client, log string, n int, acks *ackLog, stop <-chan struct{}) (wait func() []error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			prod := fmt.Sprintf("w%d", i)
			for seq := int64(0); ; seq++ {
				k := fmt.Sprintf("%s-%05d", prod, seq)
				for {
					select {
					case <-stop:
						return
					default:
					}
					res, err := c.Write(ctx, log, dlog.Record{Payload: []byte(k), ProducerID: prod, Sequence: seq})
					if err == nil {
						acks.add(k, res.DLSN)
						break
					}
					if dlog.IsDefinite(err) && !errors.Is(err, dlog.ErrOverCapacity) {
						var owned *dlog.OwnedError
						if !errors.As(err, &owned) {
							errs[i] = fmt.Errorf("writer %d record %d: %w", i, seq, err)
							return
						}
					}
					if ctx.Err() != nil {
						errs[i] = err
						return
					}
				}
			}
		})
	}
	return func() []error { wg.Wait(); return errs }
}

// tail reads log from the start through c until it has read every record
// of want (or ctx ends), and returns what it read.
func tail(ctx context.Context, c *client.Client, log string, done func([]dlog.ReadRecord) bool) ([]dlog.ReadRecord, error) {
	r, err := c.OpenReader(ctx, log, client.AtStart(), client.ReadOptions{Follow: true})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []dlog.ReadRecord
	for !done(out) {
		rec, err := r.Next(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func hasAll(acked map[string]dlog.DLSN) func([]dlog.ReadRecord) bool {
	var last dlog.DLSN
	for _, d := range acked {
		if last.Less(d) {
			last = d
		}
	}
	return func(recs []dlog.ReadRecord) bool {
		return len(recs) > 0 && !recs[len(recs)-1].DLSN.Less(last)
	}
}

// TestReaderResumesOnAnotherProxy: a following reader whose proxy shuts
// down resumes on the other one after the last record it delivered, while
// writers keep writing (and move too when that proxy owned the log).
func TestReaderResumesOnAnotherProxy(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	pa, pb := e.proxy(), e.proxy()
	c := newClient(t, []string{pa.AdvertiseAddr(), pb.AdvertiseAddr()})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := c.CreateLog(ctx, "resume", 0); err != nil {
		t.Fatal(err)
	}
	acks := newAckLog()
	stop := make(chan struct{})
	wait := startWriters(ctx, c, "resume", 4, acks, stop)
	r, err := c.OpenReader(ctx, "resume", client.AtStart(), client.ReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []dlog.ReadRecord
	next := func() {
		rec, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("read after %d records: %v", len(got), err)
		}
		got = append(got, rec)
	}
	for len(got) < 200 {
		next()
	}
	victim := pa
	if pb.readers.Load() > 0 {
		victim = pb
	}
	if err := victim.Close(); err != nil {
		t.Fatalf("close %s: %v", victim.ID(), err)
	}
	before := acks.n.Load()
	waitFor(t, time.Minute, "200 more writes after the proxy went", func() bool { return acks.n.Load() >= before+200 })
	close(stop)
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	acked := acks.snapshot()
	done := hasAll(acked)
	for !done(got) {
		next()
	}
	checkExactlyOnce(t, got, acked)
	all := readAll(t, c, "resume")
	if len(all) < len(got) {
		t.Fatalf("the log holds %d records, the reader read %d", len(all), len(got))
	}
	for i := range got {
		if got[i].DLSN != all[i].DLSN {
			t.Fatalf("record %d: reader at %v, log at %v", i, got[i].DLSN, all[i].DLSN)
		}
	}
}

// child is a proxy running in a process of its own.
type child struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan struct{}
}

// startChild runs this test binary as a proxy on the metadata service at
// url and waits until it serves. env adds KEY=VALUE settings (childIDEnv,
// childListenEnv).
func startChild(t *testing.T, url string, ttl time.Duration, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childMetaEnv+"="+url, childTTLEnv+"="+strconv.Itoa(int(ttl.Milliseconds())))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: ch.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		defer close(ch.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				lines <- a
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // our own child, by its PID
		<-ch.done
		if t.Failed() {
			t.Logf("child proxy stderr:\n%s", ch.stderr.String())
		}
	})
	select {
	case ch.addr = <-lines:
	case <-ch.done:
		t.Fatalf("child proxy exited: %s", ch.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("child proxy did not start: %s", ch.stderr.String())
	}
	return ch
}

// kill stops the child with SIGKILL and waits for it to be gone.
func (c *child) kill(t *testing.T) {
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child %d: %v", c.cmd.Process.Pid, err)
	}
	<-c.done
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestFailoverKill: the owner proxy, a process of its own on a real etcd,
// is killed with SIGKILL during writes. Writes resume through the other
// proxy once the owner's lease ends; the reader sees every acknowledged
// record exactly once, no gap, no duplicate; retries of writes that were in
// flight (same producer and sequence) append nothing twice.
func TestFailoverKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process and waits out a lease")
	}
	const ttl = 3 * time.Second
	e := newEnv(t, 3, "embedded:")
	url := strings.Join(e.store().(*metadata.KVStore).Endpoints(), ",")
	owner := startChild(t, url, ttl)
	other := e.proxy(func(c *Config) { c.SessionTTL = ttl })
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	// The child takes the log first.
	first := newClient(t, []string{owner.addr}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	if err := first.CreateLog(ctx, "failover", 0); err != nil {
		t.Fatal(err)
	}
	res, err := first.Write(ctx, "failover", dlog.Record{Payload: []byte("first"), ProducerID: "init", Sequence: 0})
	if err != nil {
		t.Fatal(err)
	}
	writers := newClient(t, []string{owner.addr, other.AdvertiseAddr()})
	readers := newClient(t, []string{other.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })

	acks := newAckLog()
	acks.add("first", res.DLSN)
	stop := make(chan struct{})
	wait := startWriters(ctx, writers, "failover", 8, acks, stop)
	type readResult struct {
		recs []dlog.ReadRecord
		err  error
	}
	// The reader stops at a last record written once every writer is
	// done: it follows the writes acknowledged before it, so when it is
	// read every acknowledged record was delivered. (Waiting instead for
	// the highest acknowledged DLSN could block for ever in Next when the
	// reader had already passed it before that DLSN was known.)
	const endPayload = "end-of-test"
	readDone := make(chan readResult, 1)
	go func() {
		recs, err := tail(ctx, readers, "failover", func(r []dlog.ReadRecord) bool {
			return len(r) > 0 && string(r[len(r)-1].Payload) == endPayload
		})
		readDone <- readResult{recs, err}
	}()

	waitFor(t, time.Minute, "writes through the child", func() bool { return acks.n.Load() >= 200 })
	owner.kill(t)
	killedAt := acks.n.Load()
	t.Logf("owner killed after %d acknowledged writes", killedAt)
	waitFor(t, 2*time.Minute, "writes to resume through the other proxy", func() bool { return acks.n.Load() >= killedAt+200 })
	close(stop)
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	acked := acks.snapshot()
	if _, err := writers.Write(ctx, "failover", dlog.Record{Payload: []byte(endPayload)}); err != nil {
		t.Fatalf("write the last record: %v", err)
	}
	var rr readResult
	select {
	case rr = <-readDone:
	case <-ctx.Done():
		t.Fatal("the reader did not see every acknowledged record")
	}
	if rr.err != nil {
		t.Fatalf("reader: %v after %d records", rr.err, len(rr.recs))
	}
	checkExactlyOnce(t, rr.recs, acked)
	all := readAll(t, readers, "failover")
	checkExactlyOnce(t, all, acked)
	seen := map[[2]any]bool{}
	for _, r := range all {
		k := [2]any{r.ProducerID, r.Sequence}
		if r.ProducerID != "" && seen[k] {
			t.Fatalf("producer %s sequence %d twice in the log", r.ProducerID, r.Sequence)
		}
		seen[k] = true
	}
	info, err := readers.LogInfo(ctx, "failover")
	if err != nil || info.Owner != other.AdvertiseAddr() {
		t.Fatalf("owner after failover %q, %v", info.Owner, err)
	}
	t.Logf("%d records acknowledged, %d in the log; duplicates answered by the new owner: %v", len(acked), len(all),
		metricValue(t, other.Registry(), "dlog_proxy_idempotent_retries_total", map[string]string{"result": "duplicate"}))
}

// TestRestartAfterKill: a proxy killed with SIGKILL and started again at
// once under the same id waits for its previous incarnation's lease to end
// instead of failing with "already exists", then serves and is registered
// at its new address.
func TestRestartAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process and waits out a lease")
	}
	const ttl = 3 * time.Second
	e := newEnv(t, 3, "embedded:")
	url := strings.Join(e.store().(*metadata.KVStore).Endpoints(), ",")
	first := startChild(t, url, ttl, childIDEnv+"=px")
	first.kill(t)
	second := startChild(t, url, ttl, childIDEnv+"=px")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	list, _, err := e.store().ListProxies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "px" || list[0].Address != second.addr {
		t.Fatalf("registrations %+v, want px at %s", list, second.addr)
	}
	c := newClient(t, []string{second.addr}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	if err := c.CreateLog(ctx, "restarted", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(ctx, "restarted", dlog.Record{Payload: []byte("x")}); err != nil {
		t.Fatalf("write through the restarted proxy: %v", err)
	}
}
