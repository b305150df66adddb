package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/x/term"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/termsafe"
)

// progressMin is the smallest transfer that gets a progress bar.
const progressMin = 1 << 20

// progressBar draws the progress of uploads and downloads on standard
// error, on one line redrawn in place, when standard error is a terminal
// and the file is over progressMin; otherwise it draws nothing.
type progressBar struct {
	w      io.Writer // nil: no bar
	drawn  bool
	last   string
	lastPc int
}

func (e *env) progressBar() *progressBar {
	w := e.stderr
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap() // main's termsafe writer, around os.Stderr
	}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return &progressBar{}
	}
	return &progressBar{w: f}
}

func (b *progressBar) update(p client.Progress) {
	if b.w == nil || p.Total <= progressMin {
		return
	}
	pc := int(p.Done * 100 / max(p.Total, 1))
	name := termsafe.Line(p.Name)
	if b.drawn && name == b.last && pc == b.lastPc {
		return
	}
	b.drawn, b.last, b.lastPc = true, name, pc
	verb := "downloading"
	if p.Upload {
		verb = "uploading"
	}
	if r := []rune(name); len(r) > 30 {
		name = string(r[:29]) + "…"
	}
	const width = 24
	fill := pc * width / 100
	fmt.Fprintf(b.w, "\r\x1b[K%s %s [%s%s] %3d%% %s / %s", verb, name, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		pc, client.FormatSize(p.Done), client.FormatSize(p.Total))
}

// done ends the bar's line.
func (b *progressBar) done() {
	if b.w != nil && b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}
