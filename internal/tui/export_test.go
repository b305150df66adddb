package tui

import (
	"time"

	"github.com/hushmsg/hush/internal/client"
)

// SetClock makes m read the time for typing indicators from now (tests).
func SetClock(m *Model, now func() time.Time) { m.nowFunc = now }

// Tick is the UI's clock ticking at now.
func Tick(m *Model, now time.Time) { m.Update(tickMsg(now)) }

// GotTyping is a typing indicator arriving.
func GotTyping(m *Model, ty client.Typing) { m.Update(typingMsg{ty}) }
