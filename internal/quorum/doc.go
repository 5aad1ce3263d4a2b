// Package quorum is the pure quorum logic of the BookKeeper protocol that
// dlog's ledger client runs: write sets, the acknowledgement tracker of a
// pipelined writer with ensemble changes, the coverage rule used by fencing
// and read-LAC, and the per-entry decision and end-of-ledger scan of
// recovery. It performs no I/O, starts no goroutines and reads no clock; the
// ledger client is the shell that sends, receives and persists, and feeds
// what happened into these machines.
//
// # Vocabulary
//
// A ledger has an ensemble of E bookies. Entry e goes to its write set: the
// Qw members at ensemble indices e mod E, e mod E + 1, ... (wrapping). It is
// complete once Qa distinct write set members fsynced it, and acknowledged
// once it is complete and every earlier entry is acknowledged; the LAC is
// the last acknowledged entry. Because any Qa members of a write set of Qw
// intersect any Qw−Qa+1 of them, Qw−Qa+1 answers per write set is the
// recurring threshold (Params.NegativesNeeded):
//
//   - Fencing and read-LAC (Params.Coverage): once at least Qw−Qa+1 members
//     of every write set are fenced, no write set can gather Qa acks for the
//     old writer any more, and the largest LAC among the answers is at least
//     any LAC the old writer could have made durable.
//   - Recovery reads (Params.DecideEntry): an entry that Qw−Qa+1 fenced
//     members of its write set lack was never acknowledged. Only explicit
//     negatives count; an I/O error, checksum error or timeout is unknown,
//     and an entry with neither data nor enough negatives is Unrecoverable.
//
// # Assumptions the shell must uphold
//
//   - Bookies ack an add only after fsyncing it, and a fence only after
//     persisting it (creating the ledger's fence record if they never saw
//     the ledger).
//   - Every recovery read carries the fence flag, so each explicit negative
//     comes from a fenced bookie and is final (BookKeeper #2614: unfenced
//     negatives let an old writer complete an entry after recovery declared
//     it absent).
//   - Bookie ids identify an incarnation (address + instance id), so a
//     wiped bookie never answers for the old one.
//   - An ensemble change is persisted in metadata (CAS) before anything is
//     sent to a new member (BookKeeper #1591), and the fragment it persists
//     starts at the id BeginChange returned.
//
// Recovery, end to end: Coverage on the fence answers until Covered; the
// maximum LAC among them starts a Scan; each recovery read's answers go
// through DecideEntry into Scan.Record; the confirmed entries are re-added
// through a tracker from NewTrackerAfter(p, lastFragment, lac); the ledger
// closes at Scan.LastEntryID once they are acknowledged.
//
// # Example
//
//	t, _ := quorum.NewTracker(quorum.Params{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2}, ensemble)
//	id, sends := t.Add()            // send the entry, carrying t.LAC()
//	acked, err := t.Ack(id, 1, "b1") // complete the futures of acked, in order
//	stalled, _ := t.Fail(2)         // bookie at index 2 broke
//	first, _ := t.BeginChange()     // persist fragment {first: ensemble'} by CAS
//	res, _ := t.CommitChange(map[int]string{2: "b9"}) // then perform res.Resend
//
// # Concurrency
//
// Functions are pure; Tracker and Scan values are not safe for concurrent
// use: the ledger client serialises calls (one goroutine or a mutex).
package quorum
