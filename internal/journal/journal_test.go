package journal

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

func TestRoundTripAcrossFiles(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	rng := rand.New(rand.NewPCG(1, 2))
	recs := randomRecords(rng, 600, 1000) // ~300 KiB: several 64 KiB files

	j, got := openReplay(t, cfg, Position{})
	must.Empty(t, got)
	want := appendSeq(t, j, recs)
	st := j.Stats()
	atLeast(t, st.Rolls, uint64(3))
	must.Equal(t, uint64(len(recs)), st.Records)
	must.Equal(t, st.Groups, st.Syncs, "one record per group here, so no group straddles a roll: %+v", st)
	for i := 1; i < len(want); i++ {
		must.Equal(t, 1, want[i].end.Compare(want[i-1].end), "end %d", i)
	}
	must.NoError(t, j.Close())

	l := journalFiles(t, vfs.Default, cfg.Dir)
	must.Len(t, l.files, int(st.Rolls)+1)
	got = reopenRecords(t, cfg, Position{})
	requireSameRecords(t, want, got)
	requireOrdered(t, got)

	t.Run("from each file boundary and record", func(t *testing.T) {
		for _, k := range []int{0, 1, 99, 250, 599} {
			tail := reopenRecords(t, cfg, want[k].end)
			requireSameRecords(t, want[k+1:], tail)
		}
	})
}

func TestConcurrentAppendersOrderAndReplay(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, _ := openReplay(t, cfg, Position{})
	const appenders, each = 16, 60
	var log callbackLog
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(a), 7))
			for i, r := range randomRecords(rng, each, 700) {
				r[0] = byte(a) // unique per appender and index
				r[1] = byte(i)
				done := make(chan struct{})
				cb := log.done(r)
				must.NoError(t, j.Append(r, func(end Position, err error) { cb(end, err); close(done) }))
				<-done
			}
		})
	}
	wg.Wait()
	must.NoError(t, j.Close())
	want := log.snapshot()
	must.Len(t, want, appenders*each)
	for i, a := range want {
		must.NoError(t, a.err)
		if i > 0 {
			must.Equal(t, 1, a.end.Compare(want[i-1].end), "callbacks out of order at %d", i)
		}
	}
	got := reopenRecords(t, cfg, Position{})
	requireSameRecords(t, want, got)
	st := j.Stats()
	less(t, st.Groups, uint64(appenders*each), "no group held more than one record")
}

func TestGroupCommitBatchesWhileSyncInFlight(t *testing.T) {
	gate := newSyncGate()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = gate.wrap(vfs.Default)
	j, _ := openReplay(t, cfg, Position{})

	var log callbackLog
	must.NoError(t, j.Append([]byte("first"), log.done([]byte("first"))))
	gate.waitBlocked(t, 1) // the writer is inside the first group's sync
	const queued = 100
	for i := range queued {
		r := []byte{'q', byte(i)}
		must.NoError(t, j.Append(r, log.done(r)))
	}
	gate.release()
	waitFor(t, "all callbacks", func() bool { return log.len() == queued+1 })
	st := j.Stats()
	must.Equal(t, uint64(2), st.Groups, "records queued during a sync form one group")
	must.Equal(t, uint64(2), st.Syncs)
	for _, a := range log.snapshot() {
		must.NoError(t, a.err)
	}
}

func TestLoneAppenderNeverWaits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxGroupWait = MaxGroupWaitLimit
	j, _ := openReplay(t, cfg, Position{})
	appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(3, 3)), 50, 100))
	must.Zero(t, j.stats.groupWaits.Load())
	must.Equal(t, uint64(50), j.Stats().Groups)
}

func TestAppendRejections(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, err := Open(cfg)
	must.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	must.ErrorIs(t, j.Append([]byte("x"), func(Position, error) {}), ErrNotReplayed)
	must.ErrorIs(t, j.ReleaseBefore(Position{File: 5}), ErrNotReplayed)
	replayAll(t, j, Position{})
	must.ErrorIs(t, j.Replay(Position{}, nil), ErrReplayed)

	tests := []struct {
		name string
		rec  []byte
		want error
	}{
		{name: "empty", rec: nil, want: ErrEmptyRecord},
		{name: "one byte over", rec: make([]byte, cfg.MaxRecordBytes+1), want: ErrRecordTooLarge},
		{name: "far over", rec: make([]byte, 10*cfg.MaxRecordBytes), want: ErrRecordTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			err := j.Append(tc.rec, func(Position, error) { called = true })
			must.ErrorIs(t, err, tc.want)
			_, err = j.AppendSync(t.Context(), tc.rec)
			must.ErrorIs(t, err, tc.want)
			must.False(t, called)
		})
	}
	must.NoError(t, j.Err())
}

func TestOversizedRecordDoesNotAffectOthers(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, _ := openReplay(t, cfg, Position{})
	recs := randomRecords(rand.New(rand.NewPCG(4, 4)), 200, 500)
	var log callbackLog
	var wg sync.WaitGroup
	for i, r := range recs {
		must.NoError(t, j.Append(r, log.done(r)))
		if i%10 == 0 {
			wg.Go(func() {
				err := j.Append(make([]byte, cfg.MaxRecordBytes+1+i), func(Position, error) { t.Error("callback of a rejected record") })
				must.ErrorIs(t, err, ErrRecordTooLarge)
			})
		}
	}
	wg.Wait()
	waitFor(t, "all callbacks", func() bool { return log.len() == len(recs) })
	must.NoError(t, j.Err())
	must.NoError(t, j.Close())
	want := log.snapshot()
	for _, a := range want {
		must.NoError(t, a.err)
	}
	requireSameRecords(t, want, reopenRecords(t, cfg, Position{}))
}

func TestCloseFailsQueuedAppends(t *testing.T) {
	gate := newSyncGate()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = gate.wrap(vfs.Default)
	j, _ := openReplay(t, cfg, Position{})

	var log callbackLog
	must.NoError(t, j.Append([]byte("in flight"), log.done([]byte("in flight"))))
	gate.waitBlocked(t, 1)
	for i := range 10 {
		r := []byte{'q', byte(i)}
		must.NoError(t, j.Append(r, log.done(r)))
	}
	closed := make(chan error)
	go func() { closed <- j.Close() }()
	waitFor(t, "close to begin", func() bool {
		return errors.Is(j.Append([]byte("late"), func(Position, error) {}), ErrClosed)
	})
	gate.release()
	must.NoError(t, <-closed)

	got := log.snapshot()
	must.Len(t, got, 11, "every accepted append got its callback before Close returned")
	must.NoError(t, got[0].err, "the group in flight completes")
	for _, a := range got[1:] {
		must.ErrorIs(t, a.err, ErrClosed)
	}
	must.NoError(t, j.Close(), "Close is idempotent")
	_, err := j.AppendSync(t.Context(), []byte("x"))
	must.ErrorIs(t, err, ErrClosed)
	must.ErrorIs(t, j.Replay(Position{}, nil), ErrClosed)
	must.ErrorIs(t, j.ReleaseBefore(Position{}), ErrClosed)

	recs := reopenRecords(t, testConfig(t, cfg.Dir), Position{})
	must.Len(t, recs, 1)
}

func TestOverloadAndAppendSyncWaitsForRoom(t *testing.T) {
	gate := newSyncGate()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = gate.wrap(vfs.Default)
	cfg.MaxRecordBytes = 1000
	cfg.MaxQueueBytes = 4 * (1000 + recordHeaderSize)
	j, _ := openReplay(t, cfg, Position{})

	var log callbackLog
	must.NoError(t, j.Append([]byte("in flight"), log.done(nil)))
	gate.waitBlocked(t, 1)
	rec := make([]byte, 1000)
	for range 4 {
		must.NoError(t, j.Append(rec, log.done(nil)))
	}
	must.ErrorIs(t, j.Append(rec, log.done(nil)), ErrOverloaded)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := j.AppendSync(ctx, rec)
	must.ErrorIs(t, err, context.Canceled)

	res := make(chan error, 1)
	go func() {
		_, err := j.AppendSync(t.Context(), rec)
		res <- err
	}()
	gate.release()
	must.NoError(t, <-res)
	waitFor(t, "callbacks", func() bool { return log.len() == 5 })
	must.NoError(t, j.Err())
}

func TestAppendSyncContextEndsWhileInFlight(t *testing.T) {
	gate := newSyncGate()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = gate.wrap(vfs.Default)
	j, _ := openReplay(t, cfg, Position{})
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() {
		_, err := j.AppendSync(ctx, []byte("maybe"))
		res <- err
	}()
	gate.waitBlocked(t, 1)
	cancel()
	err := <-res
	must.ErrorIs(t, err, context.Canceled)
	must.ErrorContains(t, err, "outcome unknown")
	gate.release()
	must.NoError(t, j.Close())
	must.Len(t, reopenRecords(t, testConfig(t, cfg.Dir), Position{}), 1, "the record became durable anyway")
}

func TestReleaseBefore(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, _ := openReplay(t, cfg, Position{})
	want := appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(5, 5)), 500, 1000))
	files := journalFiles(t, vfs.Default, cfg.Dir).files
	atLeast(t, len(files), 4)

	mark := want[300].end
	must.NoError(t, j.ReleaseBefore(mark))
	left := journalFiles(t, vfs.Default, cfg.Dir).files
	must.Equal(t, mark.File, left[0], "files before the mark's file are gone")
	must.Equal(t, files[len(files)-1], left[len(left)-1])

	// A mark beyond the file being written never deletes it.
	must.NoError(t, j.ReleaseBefore(Position{File: 1 << 60}))
	left = journalFiles(t, vfs.Default, cfg.Dir).files
	must.Equal(t, []uint64{files[len(files)-1]}, left)
	more := appendSeq(t, j, [][]byte{[]byte("after release")})
	must.NoError(t, j.Close())

	got := reopenRecords(t, cfg, want[len(want)-1].end)
	requireSameRecords(t, more, got)
}

func TestReplayFromPositions(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, _ := openReplay(t, cfg, Position{})
	want := appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(6, 6)), 300, 1000))
	must.NoError(t, j.Close())

	t.Run("inside a record", func(t *testing.T) {
		j, err := Open(cfg)
		must.NoError(t, err)
		defer j.Close()
		inside := want[100].end
		inside.Offset += 3
		must.ErrorIs(t, j.Replay(inside, nil), ErrBadPosition)
		must.ErrorIs(t, j.Append([]byte("x"), func(Position, error) {}), ErrNotReplayed)
		requireSameRecords(t, want[101:], replayAll(t, j, want[100].end))
	})
	t.Run("callback error aborts and can be retried", func(t *testing.T) {
		j, err := Open(cfg)
		must.NoError(t, err)
		defer j.Close()
		n := 0
		err = j.Replay(Position{}, func(Position, Position, []byte) error {
			if n++; n == 10 {
				return errTest
			}
			return nil
		})
		must.ErrorIs(t, err, errTest)
		requireSameRecords(t, want, replayAll(t, j, Position{}))
	})
	t.Run("file start", func(t *testing.T) {
		f := want[200].end.File
		var tail []appended
		for _, a := range want {
			if a.end.File >= f {
				tail = append(tail, a)
			}
		}
		requireSameRecords(t, tail, reopenRecords(t, cfg, Position{File: f}))
	})
	t.Run("beyond the end", func(t *testing.T) {
		// A mark past everything (its files were lost): appends must land
		// after it, or a replay from it would skip them.
		mark := Position{File: want[len(want)-1].end.File + 5, Offset: 1000}
		j, got := openReplay(t, cfg, mark)
		must.Empty(t, got)
		more := appendSeq(t, j, [][]byte{[]byte("a"), []byte("b")})
		must.Equal(t, 1, more[0].end.Compare(mark))
		must.NoError(t, j.Close())
		requireSameRecords(t, more, reopenRecords(t, cfg, mark))
		requireSameRecords(t, append(slices.Clone(want), more...), reopenRecords(t, cfg, Position{}))
	})
}

func TestOpenLocksDirectory(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, err := Open(cfg)
	must.NoError(t, err)
	_, err = Open(cfg)
	must.Error(t, err)
	must.NoError(t, j.Close())
	j, err = Open(cfg)
	must.NoError(t, err)
	must.NoError(t, j.Close())
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir())
	cfg.Registerer = reg
	j, _ := openReplay(t, cfg, Position{})
	appendSeq(t, j, [][]byte{[]byte("a"), []byte("bb")})
	mfs, err := reg.Gather()
	must.NoError(t, err)
	byName := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			byName[mf.GetName()] = m.GetCounter().GetValue()
		case m.GetHistogram() != nil:
			byName[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
		case m.GetGauge() != nil:
			byName[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	must.Equal(t, map[string]float64{
		"dlog_journal_records_total":     2,
		"dlog_journal_bytes_total":       float64(2*recordHeaderSize + 3),
		"dlog_journal_fdatasync_seconds": 2,
		"dlog_journal_group_records":     2,
		"dlog_journal_failed":            0,
		"dlog_journal_queue_bytes":       0,
		"dlog_journal_queue_records":     0,
	}, byName)
	_, err = Open(cfg)
	must.Error(t, err, "the directory is locked")
	must.NoError(t, j.Close())
	j2, _ := openReplay(t, cfg, Position{})
	must.NoError(t, j2.Close(), "metrics were unregistered by Close")
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig("/x")
	must.NoError(t, base.Validate())
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{name: "no dir", edit: func(c *Config) { c.Dir = "" }},
		{name: "zero max record", edit: func(c *Config) { c.MaxRecordBytes = 0 }},
		{name: "huge max record", edit: func(c *Config) { c.MaxRecordBytes = MaxRecordBytesLimit + 1; c.FileSizeBytes = 4 << 30 }},
		{name: "tiny file", edit: func(c *Config) { c.FileSizeBytes = 1024; c.MaxRecordBytes = 10 }},
		{name: "file smaller than a record", edit: func(c *Config) { c.FileSizeBytes = 8 << 20 }},
		{name: "zero group bytes", edit: func(c *Config) { c.MaxGroupBytes = 0 }},
		{name: "negative wait", edit: func(c *Config) { c.MaxGroupWait = -1 }},
		{name: "long wait", edit: func(c *Config) { c.MaxGroupWait = MaxGroupWaitLimit + 1 }},
		{name: "queue below a record", edit: func(c *Config) { c.MaxQueueBytes = c.MaxRecordBytes }},
		{name: "zero slow threshold", edit: func(c *Config) { c.SlowSyncThreshold = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			must.Error(t, c.Validate())
			_, err := Open(c)
			must.Error(t, err)
		})
	}
}
