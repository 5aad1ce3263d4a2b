// Package kvstore is an example of a replicated state machine on a dlog
// log: a key-value store whose every change is a record of the log.
// Replicas apply the records in DLSN order, so they all reach the same
// state; one of them (the leader) owns the log's writer and accepts
// changes. A replica snapshots its map together with the DLSN of the last
// record it applied; after a restart it loads the snapshot and replays the
// log from the record after that DLSN, so nothing is applied twice or
// missed.
//
//	s, err := kvstore.Open(ctx, ns, "orders", dir, true) // leader
//	defer s.Close(ctx)
//	_, err = s.Put(ctx, "k", "v") // returns once applied locally
//	v, ok := s.Get("k")
//	err = s.Snapshot()
package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/namespace"
)

// command is one record of the log.
type command struct {
	Op    string `json:"op"` // "put" or "delete"
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// snapshot is what a replica keeps on disk.
type snapshot struct {
	Applied *dlog.DLSN        `json:"applied,omitempty"` // nil: nothing applied
	Data    map[string]string `json:"data"`
}

// ErrNotLeader: a follower cannot change the store.
var ErrNotLeader = errors.New("kvstore: not the leader")

// Store is one replica. Get and Applied are safe for concurrent use; Put
// and Delete too, on the leader.
type Store struct {
	dir string
	w   *namespace.Writer // nil on followers
	r   *namespace.Reader

	mu       sync.Mutex
	data     map[string]string
	applied  dlog.DLSN
	replayed int           // records applied since Open
	changed  chan struct{} // closed and replaced on every apply
	err      error         // why the apply loop stopped

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open loads the replica's snapshot from dir (if any) and starts applying
// the log from the record after it. With leader set it also takes the
// log's writer (failing with *dlog.OwnedError if another replica has it).
// Errors: a snapshot that cannot be read or parsed; those of
// namespace.OpenReader (dlog.ErrLogNotFound, dlog.ErrTruncated when the
// snapshot is older than the log's truncation point: rebuild the replica
// from another one's snapshot) and namespace.OpenWriter.
func Open(ctx context.Context, ns *namespace.Namespace, log, dir string, leader bool) (*Store, error) {
	s := &Store{dir: dir, data: make(map[string]string), changed: make(chan struct{})}
	if b, err := os.ReadFile(s.snapshotPath()); err == nil {
		var snap snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			return nil, fmt.Errorf("kvstore: snapshot: %w", err)
		}
		if snap.Data != nil {
			s.data = snap.Data
		}
		if snap.Applied != nil {
			s.applied = *snap.Applied
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kvstore: snapshot: %w", err)
	}
	pos := namespace.AtStart()
	if s.applied.IsValid() {
		pos = namespace.AtDLSN(s.applied.Next())
	}
	r, err := ns.OpenReader(ctx, log, pos, namespace.ReaderOptions{})
	if err != nil {
		return nil, fmt.Errorf("kvstore: %w", err)
	}
	s.r = r
	if leader {
		if s.w, err = ns.OpenWriter(ctx, log, namespace.WriterOptions{}); err != nil {
			r.Close()
			return nil, fmt.Errorf("kvstore: %w", err)
		}
	}
	actx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.apply(actx) })
	return s, nil
}

func (s *Store) snapshotPath() string { return filepath.Join(s.dir, "snapshot.json") }

// apply is the replica's state machine loop: one record at a time, in
// log order.
func (s *Store) apply(ctx context.Context) {
	for rec, err := range s.r.All(ctx) {
		if err != nil {
			s.mu.Lock()
			s.err = err
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			return
		}
		var cmd command
		if err := json.Unmarshal(rec.Payload, &cmd); err != nil {
			cmd = command{} // not ours: skip it, but count it as applied
		}
		s.mu.Lock()
		switch cmd.Op {
		case "put":
			s.data[cmd.Key] = cmd.Value
		case "delete":
			delete(s.data, cmd.Key)
		}
		s.applied = rec.DLSN
		s.replayed++
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// Put sets key to value through the log and returns once this replica
// applied it (read-your-writes on the leader). Errors: ErrNotLeader on a
// follower (nothing written); the writer's errors (see
// namespace.Writer.Write: a definite one wrote nothing, an indeterminate
// one may have); those of WaitApplied (then the change is in the log).
func (s *Store) Put(ctx context.Context, key, value string) (dlog.DLSN, error) {
	return s.write(ctx, command{Op: "put", Key: key, Value: value})
}

// Delete removes key through the log. Errors as Put.
func (s *Store) Delete(ctx context.Context, key string) (dlog.DLSN, error) {
	return s.write(ctx, command{Op: "delete", Key: key})
}

func (s *Store) write(ctx context.Context, cmd command) (dlog.DLSN, error) {
	if s.w == nil {
		return dlog.InvalidDLSN, ErrNotLeader
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return dlog.InvalidDLSN, err
	}
	d, err := s.w.Write(ctx, dlog.Record{TxID: s.w.LastTxID() + 1, Payload: b})
	if err != nil {
		return dlog.InvalidDLSN, err
	}
	return d, s.WaitApplied(ctx, d)
}

// WaitApplied waits until the replica applied the record at d. Errors:
// ctx's, or the error that stopped the apply loop (e.g. dlog.ErrTruncated
// for a replica whose snapshot is older than the truncation point).
func (s *Store) WaitApplied(ctx context.Context, d dlog.DLSN) error {
	for {
		s.mu.Lock()
		done, err, ch := !s.applied.Less(d), s.err, s.changed
		s.mu.Unlock()
		switch {
		case done:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Get returns the value of key in this replica's state.
func (s *Store) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return v, ok
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

// Applied returns the DLSN of the last record applied, and how many
// records were applied since Open (a restarted replica replays only what
// its snapshot lacks).
func (s *Store) Applied() (dlog.DLSN, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, s.replayed
}

// Snapshot writes the state and its applied DLSN to disk atomically
// (write a temporary file, fsync, rename, fsync the directory). Errors:
// file system errors; the previous snapshot is then still in place.
func (s *Store) Snapshot() error {
	s.mu.Lock()
	snap := snapshot{Data: s.data}
	if s.applied.IsValid() {
		applied := s.applied
		snap.Applied = &applied
	}
	b, err := json.Marshal(snap)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := s.snapshotPath() + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.snapshotPath()); err != nil {
		return err
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close stops applying and, on the leader, closes the writer. Errors:
// those of namespace.Writer.Close.
func (s *Store) Close(ctx context.Context) error {
	s.r.Close()
	s.cancel()
	s.wg.Wait()
	if s.w != nil {
		return s.w.Close(ctx)
	}
	return nil
}
