package tui

import (
	"strings"
	"time"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/termsafe"
)

// This file: typing indicators in the UI (issue 9 part 5;
// docs/multidevice.md section 5, docs/client.md "Typing indicators").
//
// Sending follows Signal's TypingStatusSender: "started" when the input
// line gets text in a conversation, again every client.TypingRefresh
// while it keeps changing, "stopped" when it is emptied (or turns into a
// /command), after client.TypingIdle without a change, or when another
// conversation opens. Sending the message sends nothing: the message
// ends the indicator where it arrives. A stopped goes only after a
// started, and a started at most once per TypingRefresh, so a
// conversation gets at most two a TypingRefresh however one types (the
// server counts them as messages: docs/client.md, "Typing indicators").

// convKey names a conversation: the person and its kind.
type convKey struct {
	peer   string
	secret bool
}

// typingSend is one indicator to send.
type typingSend struct {
	to      convKey
	started bool
}

// typingClock decides when this person's typing is to be told.
type typingClock struct {
	conv      convKey   // the conversation the state is of
	typing    bool      // a started went and no stopped since
	lastStart time.Time // when the last started went (any conversation)
	lastKey   time.Time // when the input line last changed
}

// input is called when the input line changed to value in conv.
func (t *typingClock) input(now time.Time, conv convKey, value string) []typingSend {
	var out []typingSend
	if conv != t.conv {
		out = t.leave()
		t.conv = conv
	}
	if conv.peer == "" {
		return out
	}
	text := strings.TrimSpace(value) != "" && !strings.HasPrefix(strings.TrimSpace(value), "/")
	if !text {
		if t.typing {
			t.typing = false
			out = append(out, typingSend{conv, false})
		}
		return out
	}
	t.lastKey = now
	if now.Sub(t.lastStart) >= client.TypingRefresh {
		t.typing, t.lastStart = true, now
		out = append(out, typingSend{conv, true})
	}
	return out
}

// sent is called when the line was sent as a message: no stopped goes.
func (t *typingClock) sent() { t.typing = false }

// tick is called every second: typing stops after TypingIdle without a
// change to the line.
func (t *typingClock) tick(now time.Time) []typingSend {
	if t.typing && now.Sub(t.lastKey) >= client.TypingIdle {
		t.typing = false
		return []typingSend{{t.conv, false}}
	}
	return nil
}

// leave is called when another conversation opens.
func (t *typingClock) leave() []typingSend {
	if !t.typing {
		return nil
	}
	t.typing = false
	return []typingSend{{t.conv, false}}
}

// sendTyping queues indicators for the sender goroutine, which sends them
// in order; when it is behind, they are dropped (best effort).
func (m *Model) sendTyping(ss []typingSend) {
	for _, s := range ss {
		select {
		case m.typingOut <- s:
		default:
		}
	}
}

// typingSender sends the queued indicators one at a time, so that a
// stopped never overtakes its started, until the UI ends.
func (m *Model) typingSender() {
	for {
		select {
		case <-m.ctx.Done():
			return
		case s := <-m.typingOut:
			_ = m.c.SendTyping(m.ctx, s.to.peer, s.to.secret, s.started) // best effort
		}
	}
}

// typingMsg is a typing indicator received.
type typingMsg struct{ t client.Typing }

// gotTyping shows or clears a received indicator.
func (m *Model) gotTyping(ty client.Typing) {
	k := convKey{ty.Peer, ty.Secret}
	if ty.Started {
		m.typingIn[k] = m.clock().Add(client.TypingExpiry)
	} else {
		delete(m.typingIn, k)
	}
}

// expireTyping drops the indicators whose time is up.
func (m *Model) expireTyping() {
	now := m.clock()
	for k, until := range m.typingIn {
		if !now.Before(until) {
			delete(m.typingIn, k)
		}
	}
}

// typingLine is the line under the open thread while its person types.
func (m *Model) typingLine() string {
	if _, ok := m.typingIn[convKey{m.peer, m.secret}]; !ok || m.peer == "" {
		return ""
	}
	return dimStyle.Render(termsafe.Line(m.peer) + " is typing…")
}

// clock is the time for typing: the model's own clock when a test sets
// one, else now.
func (m *Model) clock() time.Time {
	if m.nowFunc != nil {
		return m.nowFunc()
	}
	return time.Now()
}
