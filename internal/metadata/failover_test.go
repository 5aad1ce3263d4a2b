package metadata_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
)

// retryUnavailable runs op until it returns something other than
// ErrUnavailable. resolve, called after an ErrUnavailable, re-reads the
// state and reports whether that indeterminate attempt took effect.
func retryUnavailable(ctx context.Context, op func() error, resolve func() (bool, error)) error {
	backoff := 10 * time.Millisecond
	for {
		err := op()
		if !errors.Is(err, metadata.ErrUnavailable) {
			return err
		}
		unavailableSeen.Add(1)
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 200*time.Millisecond)
		if resolve != nil {
			landed, rerr := resolveUntil(ctx, resolve)
			if rerr != nil {
				return rerr
			}
			if landed {
				return nil
			}
		}
	}
}

// unavailableSeen counts the ErrUnavailable answers retried.
var unavailableSeen atomic.Int64

func resolveUntil(ctx context.Context, resolve func() (bool, error)) (bool, error) {
	for {
		landed, err := resolve()
		if !errors.Is(err, metadata.ErrUnavailable) || ctx.Err() != nil {
			return landed, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeaderLoss runs a metadata workload on a 3-member etcd cluster and
// stops the leader in the middle of it. Operations keep succeeding
// (retrying ErrUnavailable, resolving indeterminate writes by re-reading),
// and every acknowledged update is present afterwards.
func TestLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member etcd cluster")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cl, err := etcdserver.StartCluster(ctx, t.TempDir(), 3, nil)
	must(t, err)
	defer cl.Close()
	url := strings.Join(cl.Endpoints(), ",")
	opts := metadata.Options{Cluster: "failover", RequestTimeout: 3 * time.Second}
	st, err := metadata.Open(ctx, url, opts)
	must(t, err)
	defer st.Close()

	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	s, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	owner, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "writer"}, false)
	must(t, err)
	counterV, err := st.CreateLedger(ctx, 1_000_000, testLedger())
	must(t, err)

	var (
		acks      atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		mu        sync.Mutex
		ledgers   []int64 // acknowledged CreateLedger ids
		segments  []int64 // acknowledged lssns
		increment int     // acknowledged counter updates
	)
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		cancel()
	}
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return ctx.Err() == nil
		}
	}

	// Worker 1: fresh ledger ids and ledger creation.
	wg.Go(func() {
		for running() {
			var id int64
			if err := retryUnavailable(ctx, func() (err error) { id, err = st.NewLedgerID(ctx); return err }, nil); err != nil {
				fail("NewLedgerID: %v", err)
				return
			}
			attempts := 0
			err := retryUnavailable(ctx, func() error {
				attempts++
				_, err := st.CreateLedger(ctx, id, testLedger())
				if errors.Is(err, metadata.ErrExists) && attempts > 1 {
					return nil // an earlier, indeterminate attempt landed
				}
				return err
			}, nil)
			if err != nil {
				fail("CreateLedger %d: %v", id, err)
				return
			}
			mu.Lock()
			ledgers = append(ledgers, id)
			mu.Unlock()
			acks.Add(1)
		}
	})
	// Worker 2: the segment-creation transaction of a log writer.
	wg.Go(func() {
		for running() {
			var state metadata.LogState
			if err := retryUnavailable(ctx, func() (err error) { state, err = st.GetLogState(ctx, "ns", "l"); return err }, nil); err != nil {
				fail("GetLogState: %v", err)
				return
			}
			next := state.MaxLSSN + 1
			err := retryUnavailable(ctx, func() error {
				_, err := st.Commit(ctx,
					metadata.CreateSegment("ns", "l", metadata.Segment{LSSN: next, LedgerID: next, State: metadata.SegmentInProgress}),
					metadata.SetMaxLSSN("ns", "l", next, state.MaxLSSNVersion),
					metadata.SetMaxTxID("ns", "l", next*10, state.MaxTxIDVersion),
					metadata.CheckOwner("ns", "l", owner))
				return err
			}, func() (bool, error) {
				now, err := st.GetLogState(ctx, "ns", "l")
				return err == nil && now.MaxLSSN == next, err
			})
			if err != nil {
				fail("create segment %d: %v", next, err)
				return
			}
			mu.Lock()
			segments = append(segments, next)
			mu.Unlock()
			acks.Add(1)
		}
	})
	// Worker 3: CAS updates of one ledger (a counter in its custom map).
	wg.Go(func() {
		v := counterV
		for n := 1; running(); n++ {
			m := testLedger()
			m.Custom = map[string]string{"n": strconv.Itoa(n)}
			err := retryUnavailable(ctx, func() error {
				nv, err := st.UpdateLedger(ctx, 1_000_000, m, v)
				if err == nil {
					v = nv
				}
				return err
			}, func() (bool, error) {
				cur, cv, err := st.GetLedger(ctx, 1_000_000)
				if err != nil {
					return false, err
				}
				if cur.Custom["n"] == strconv.Itoa(n) {
					v = cv
					return true, nil
				}
				return false, nil
			})
			if err != nil {
				fail("update counter to %d: %v", n, err)
				return
			}
			mu.Lock()
			increment = n
			mu.Unlock()
			acks.Add(1)
		}
	})

	waitAcks := func(n int64, what string) {
		for acks.Load() < n {
			if ctx.Err() != nil {
				t.Fatalf("workload stalled %s (%d acks)", what, acks.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcks(60, "before the leader stopped")
	var leader int
	for leader = cl.Leader(); leader < 0; leader = cl.Leader() {
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stoppedAt := acks.Load()
	cl.Members[leader].Close()
	t.Logf("stopped leader m%d after %d acks", leader, stoppedAt)
	waitAcks(stoppedAt+60, "after the leader stopped")
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	if isClosedChan(owner.Lost()) {
		t.Fatal("ownership lost across the leader change")
	}

	// Read back through a new client of the survivors only.
	var survivors []string
	for i, m := range cl.Members {
		if i != leader {
			survivors = append(survivors, m.Endpoints()...)
		}
	}
	check, err := metadata.Open(ctx, strings.Join(survivors, ","), opts)
	must(t, err)
	defer check.Close()
	// Elections may still be settling on a loaded machine: reads retry
	// ErrUnavailable like any client would.
	for _, id := range ledgers {
		err := retryUnavailable(ctx, func() error { _, _, err := check.GetLedger(ctx, id); return err }, nil)
		if err != nil {
			t.Fatalf("acknowledged ledger %d: %v", id, err)
		}
	}
	var state metadata.LogState
	must(t, retryUnavailable(ctx, func() (err error) { state, err = check.GetLogState(ctx, "ns", "l"); return err }, nil))
	var got []int64
	for _, s := range state.Segments {
		got = append(got, s.LSSN)
	}
	if !slices.Equal(got, segments) || state.MaxLSSN != int64(len(segments)) {
		t.Fatalf("segments %v (max %d), acknowledged %v", got, state.MaxLSSN, segments)
	}
	var cur metadata.LedgerMetadata
	must(t, retryUnavailable(ctx, func() (err error) { cur, _, err = check.GetLedger(ctx, 1_000_000); return err }, nil))
	if cur.Custom["n"] != strconv.Itoa(increment) {
		t.Fatalf("counter %s, acknowledged %d", cur.Custom["n"], increment)
	}
	t.Logf("acknowledged: %d ledgers, %d segments, %d counter updates; %d ErrUnavailable retried",
		len(ledgers), len(segments), increment, unavailableSeen.Load())
	must(t, retryUnavailable(ctx, func() error { return owner.Release(ctx) }, nil))
	must(t, retryUnavailable(ctx, func() error { return s.Close(ctx) }, nil))
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
