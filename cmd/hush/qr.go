package main

import (
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qrText draws data as a QR code with half-block characters, two modules
// per character cell vertically, dark on a light quiet zone.
func qrText(data []byte) (string, error) {
	q, err := qrcode.New(string(data), qrcode.Medium)
	if err != nil {
		return "", err
	}
	bm := q.Bitmap() // includes the quiet zone; true = dark
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		b.WriteString("    ")
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x]
			// Light modules are drawn, dark ones left blank, so that the
			// code reads right on a dark terminal background.
			switch {
			case !top && !bottom:
				b.WriteRune('█')
			case !top && bottom:
				b.WriteRune('▀')
			case top && !bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}
