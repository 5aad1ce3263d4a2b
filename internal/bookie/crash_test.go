package bookie

const childEnv = "DLOG_BOOKIE_CRASH_CHILD"

func runCrashChild() int { return 2 }
