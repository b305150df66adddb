package client

import (
	"fmt"
	"os"
	"time"
)

// HUSH_TRACE=1 makes the engine print timing lines to standard error:
// "hush-trace UNIX-NANOSECONDS EVENT". BenchmarkSend reads the one of the
// server's answer to measure the time from the process's start to it.
var traceOn = os.Getenv("HUSH_TRACE") != ""

func trace(event string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "hush-trace %d %s\n", time.Now().UnixNano(), event)
	}
}
