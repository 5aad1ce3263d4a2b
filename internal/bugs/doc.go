// Package bugs holds switches that re-introduce known replication bugs, so
// the fault-proof harness can show that its checker catches each of them.
//
// In a normal build every switch is a constant false and the guarded code
// compiles away. Built with the tag `dlogbugs`, each switch is a variable
// (off by default) that tests turn on with Set, or a process turns on at
// start-up from the DLOG_BUGS environment variable (a comma-separated list of
// names), so that child processes of a fault scenario can run with a bug.
//
// The switches, and the bug each re-introduces:
//
//	ack-before-fsync             bookie answers an add before its journal fsync
//	recovery-reads-do-not-fence  ledger recovery reads without the fence flag
//	                             (BookKeeper #2614)
//	ack-before-ensemble-cas      writer acknowledges entries on a new ensemble
//	                             before the metadata CAS (BookKeeper #1591)
//	reader-past-lac              a tailing reader serves entries beyond the LAC
//	io-error-as-no-entry         bookie answers NO_ENTRY for an I/O or checksum
//	                             error (BookKeeper #2908)
//	journal-skip-fsync           the journal writes its groups but never
//	                             fsyncs them: acknowledged data sits in the
//	                             page cache (a lazy fsync policy, NATS
//	                             2.12.1 #7564); only a power loss shows it
//
// Failpoints (failpoint.go) are different: faults of the process's own
// I/O that a correct system must survive, not bugs. WrapFS, called where a
// bookie sets up its file system, wraps it with the failpoints of
// DLOG_FAILPOINTS (dlogbugs builds only), e.g.
// DLOG_FAILPOINTS=journal-fsync-eio-after=200 makes every journal fsync
// after the 200th fail with EIO, and DLOG_FAILPOINTS=lose-unsynced keeps
// every file write in memory until the file is fsynced (LazyFS), so that
// killing the process loses what a power cut would. It announces itself on
// stderr, so that a scenario can check that the failpoint is wired and
// fired.
package bugs

// Names of the switches, as used by Set and DLOG_BUGS.
const (
	AckBeforeFsync          = "ack-before-fsync"
	RecoveryReadsDoNotFence = "recovery-reads-do-not-fence"
	AckBeforeEnsembleCAS    = "ack-before-ensemble-cas"
	ReaderPastLAC           = "reader-past-lac"
	IOErrorAsNoEntry        = "io-error-as-no-entry"
	JournalSkipFsync        = "journal-skip-fsync"
)

// All lists every switch name.
var All = []string{AckBeforeFsync, RecoveryReadsDoNotFence, AckBeforeEnsembleCAS, ReaderPastLAC, IOErrorAsNoEntry,
	JournalSkipFsync}
