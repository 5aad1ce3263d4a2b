// Package history records what the clients of a fault-injection run did and
// saw, in a form the checker (package checker) can judge afterwards: a
// history of operations, and a final drain read of every log.
//
// The vocabulary is Jepsen's. Every client operation is an invoke event
// followed by at most one completion of the same process: ok (it took
// effect and the client knows how), fail (a definite failure: it had no
// effect, ever) or info (indeterminate: it may or may not have taken
// effect). An operation without a completion (the client died, the run
// ended) counts as info. Reader deliveries, fence observations and
// nemesis steps are single events.
//
// # History file format (JSONL)
//
// One JSON object per line, in time order; line n is History.Events[n-1].
// Fields (all but time, process, type and kind are omitted when empty):
//
//	time      int64   monotonic nanoseconds, one clock for the whole run
//	                  (all processes on one host); never decreases
//	process   string  the client: "w3", "r1", "nemesis"
//	type      string  invoke | ok | fail | info
//	kind      string  see below
//	log       string  "namespace/log"
//	value     string  unique payload id, e.g. "w3-1042"; a retry of an
//	                  indeterminate append reuses the value id
//	txid      int64   the record's txid
//	dlsn      string  DLSN text form "lssn:entry:slot": an append's
//	                  position, a delivered record's, a truncate's target
//	seqid     int64   a record's sequence id, when reported
//	records   array   append-bulk: [{"value","txid","dlsn"}...]
//	position  object  reader-open: {"at":"dlsn"|"after"|"txid"|"start"|
//	                  "end", "dlsn":..., "txid":...}
//	session   string  reader session id
//	epoch     string  writer epoch (writer session / ownership) id
//	owner     string  the epoch's proxy address or writer id
//	error     string  error class of fail/info (ErrorClass): "fenced",
//	                  "unavailable", "over-capacity", ...
//	msg       string  error text
//	fault     string  nemesis fault name
//
// Kinds and the fields they use:
//
//	append         invoke: log value txid; ok: dlsn [epoch owner seqid];
//	               fail/info: error msg [epoch owner]
//	append-bulk    invoke: log records(value txid); ok: records with dlsn.
//	               All or nothing: a partially acknowledged bulk must be
//	               recorded as separate appends.
//	reader-open    invoke: log position; ok: session (new, unique)
//	reader-close   invoke: session; any completion ends the session
//	truncate       invoke: log dlsn (delete everything before dlsn)
//	writer-open    invoke: log; ok: epoch owner [dlsn of the new segment]
//	writer-close   invoke: log [epoch]
//	read           single event of a reader session: ok = one delivered
//	               record (session log value dlsn txid seqid); fail/info =
//	               the session failed (error) and ended
//	fence-observed single info event: writer epoch `epoch` of `log` learned
//	               it was fenced or lost ownership
//	nemesis-start  single info event: fault injection begins (fault)
//	nemesis-stop   single info event: the fault is healed
//
// A session "resumed from its last delivered DLSN d" is a new reader-open
// at {"at":"after","dlsn":d}.
//
// Example:
//
//	{"time":1000,"process":"w1","type":"invoke","kind":"append","log":"ns/a","value":"w1-1","txid":7}
//	{"time":2100,"process":"w1","type":"ok","kind":"append","log":"ns/a","value":"w1-1","txid":7,"dlsn":"1:0:0","epoch":"e1","owner":"127.0.0.1:7000"}
//	{"time":2200,"process":"r1","type":"invoke","kind":"reader-open","log":"ns/a","position":{"at":"start"}}
//	{"time":2300,"process":"r1","type":"ok","kind":"reader-open","log":"ns/a","session":"r1-1"}
//	{"time":2400,"process":"r1","type":"ok","kind":"read","log":"ns/a","value":"w1-1","txid":7,"dlsn":"1:0:0","seqid":0,"session":"r1-1"}
//
// Validate (and Load, which calls it) enforces: known types and kinds,
// non-decreasing time, one operation in flight per process, completions
// matching their process's invoke (kind, log, value), deliveries only
// inside an open session of the same process, reader session ids used
// once, and the fields each kind needs.
//
// # Drain file format (JSONL)
//
// After the run, every fault is healed and every writer closed; then a
// fresh reader per log reads from the earliest untruncated position to the
// end. Per log, in order:
//
//	{"drain":"begin","log":"ns/a","time":T,"truncation":"2:0:0",
//	 "segments":[{"lssn":1,"state":"completed","last_entry":41,"start_seqid":0,"epoch":"e1"},...]}
//	{"log":"ns/a","dlsn":"2:0:0","value":"w1-77","txid":90,"seqid":120}   one line per record, read order
//	{"drain":"end","log":"ns/a","count":N[,"error":"..."]}
//
// "truncation" is the final truncation point (omitted: never truncated);
// "segments" is the final segment list from metadata: for a completed
// segment, last_entry is its sealed last entry id (-1: sealed empty). An
// "error" on the end line means the drain could not read to the end.
//
// # Usage
//
//	rec := history.NewRecorder(f, history.RecorderConfig{})
//	op := rec.InvokeAppend("w1", "ns/a", "w1-1", 7)
//	d, err := w.Write(ctx, dlog.Record{TxID: 7, Payload: payload("w1-1")})
//	op.Done(history.Event{DLSN: d, Epoch: epoch}, err) // ok, fail or info
//	...
//	rec.Close()
//
// # Concurrency
//
// A Recorder is safe for concurrent use: each event is timestamped and
// encoded under one mutex, so the file is in time order. An OpHandle
// belongs to the goroutine that invoked it. DrainWriter, Load, LoadDrains
// and Validate are not concurrent.
package history
