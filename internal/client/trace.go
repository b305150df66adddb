package client

import (
	"fmt"
	"os"
	"time"
)

var traceOn = os.Getenv("HUSH_TRACE") != ""
var traceStart = time.Now()

// trace prints a timing line to stderr when HUSH_TRACE is set.
func trace(what string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "trace %8.3fms %s\n", float64(time.Since(traceStart).Microseconds())/1000, what)
	}
}
