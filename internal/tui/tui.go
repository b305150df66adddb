// Package tui is hush's terminal UI (bubbletea): a conversation list, the
// open conversation's thread and an input line. It receives while you
// type, lists the ordinary and the secret conversation with a person as
// two entries (issue 9 part 6; docs/client.md, "The terminal UI"), marks
// secret conversations unmistakably, counts down each timed
// message and removes it when its time is up, shows key-change notices and
// the delivery state of what you send, tells the person when you type and
// shows when they do (typing.go). All logic is the engine's
// (internal/client); this package only presents it (and keeps the clock of
// typing indicators).
//
// The frame always fits the terminal: the header and the list stay on
// screen and the thread scrolls inside its pane (PgUp/PgDn, the mouse
// wheel). The UI reads the conversation again whenever the home changes
// (the engine's [client.Client.Version]): messages that another hush
// process wrote, and states the engine changed on its own (a queued
// message sent on reconnecting).
package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/termsafe"
)

// Run shows the UI until the person quits (ctrl+c) or ctx ends.
func Run(ctx context.Context, c *client.Client, peer string) error {
	m := New(ctx, c, peer)
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithMouseCellMotion(), tea.WithContext(ctx))
	final, err := p.Run()
	m.stop()
	select {
	case <-m.recvDone: // the receive loop has let go of the store
	case <-time.After(5 * time.Second):
	}
	if fm, ok := final.(*Model); ok && err == nil && fm.fatal != nil {
		err = fm.fatal
	}
	if errors.Is(err, tea.ErrProgramKilled) {
		err = nil
	}
	return err
}

// Messages the model handles besides keys.
type (
	incomingMsg struct{ m *store.Message }
	expiredMsg  struct{ ids []int64 }
	sentMsg     struct {
		tempID int64
		stored bool // the engine stored the message (queued, sent or not sent)
		err    error
	}
	errMsg       struct{ err error }
	statusMsg    string
	recvDoneMsg  struct{ err error }
	warnMsg      struct{ err error }
	connectedMsg struct{}
	tickMsg      time.Time
	pollMsg      struct{}
)

// queuedStatus says a message waits for the server; connecting clears it.
const queuedStatus = "queued: it goes out when the server can be reached"

// pollEvery is how often the UI asks whether the home changed.
const pollEvery = 250 * time.Millisecond

// sending is a message shown as being sent until Send returns.
type sending struct {
	m     *store.Message
	after int64 // the last stored id when it was typed
}

// Model is the UI's state.
type Model struct {
	ctx      context.Context
	cancel   context.CancelFunc
	c        *client.Client
	self     string
	events   chan tea.Msg
	recvDone chan struct{}

	convs   []store.Conversation // most recent first
	peer    string               // the open conversation (and the list's selection)
	secret  bool                 // whether the open one is the secret conversation with peer
	thread  []*store.Message
	contact *store.Contact           // the open conversation's, as last read
	groups  map[string]*client.Group // by Peer of their conversations (docs/groups.md)
	sending []sending
	timer   time.Duration // timer of messages sent from now on in secret conversations
	nextID  int64         // negative ids of messages being sent
	version store.Version

	input  textinput.Model
	vp     viewport.Model
	follow bool // the thread stays scrolled to its end
	help   bool // the keys are shown instead of the thread
	status string
	warn   string // a connection problem, until connected again
	fatal  error
	width  int
	height int
	now    time.Time

	initCmd tea.Cmd

	// Typing indicators (typing.go): this person's, to send, and those
	// received, until when they show.
	typing    typingClock
	typingOut chan typingSend
	typingIn  map[convKey]time.Time
	nowFunc   func() time.Time // tests
}

// New makes the model for c, opening the ordinary conversation with peer if
// given (/secret then opens the secret one), else the most recent
// conversation of either kind.
func New(ctx context.Context, c *client.Client, peer string) *Model {
	ctx, cancel := context.WithCancel(ctx)
	in := textinput.New()
	in.Placeholder = "type a message; /to NAME; /secret; ? for keys"
	in.Prompt = "> "
	in.CharLimit = 4096
	in.Focus()
	m := &Model{ctx: ctx, cancel: cancel, c: c, self: c.Account().Username, events: make(chan tea.Msg, 256), recvDone: make(chan struct{}),
		input: in, vp: viewport.New(0, 0), follow: true, width: 80, height: 24, now: time.Now(), nextID: -1,
		typingOut: make(chan typingSend, 16), typingIn: make(map[convKey]time.Time)}
	m.version, _ = c.Version(ctx)
	m.loadConversations()
	if peer != "" {
		m.initCmd = m.open(peer, false)
	} else if len(m.convs) > 0 {
		m.initCmd = m.open(m.convs[0].Peer, m.convs[0].Secret)
	}
	m.layout()
	return m
}

func (m *Model) stop() { m.cancel() }

// Init starts receiving and the clocks.
func (m *Model) Init() tea.Cmd {
	go m.typingSender()
	return tea.Batch(textinput.Blink, m.receive(), m.waitEvent(), tick(), poll(), m.initCmd)
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func poll() tea.Cmd {
	return tea.Tick(pollEvery, func(time.Time) tea.Msg { return pollMsg{} })
}

// receive runs the engine's receive loop, forwarding what it hands over.
func (m *Model) receive() tea.Cmd {
	return func() tea.Msg {
		defer close(m.recvDone)
		err := m.c.Receive(m.ctx, client.ReceiveOptions{
			Follow:    true,
			Handle:    func(sm *store.Message) { m.post(incomingMsg{sm}) },
			Expired:   func(ids []int64) { m.post(expiredMsg{ids}) },
			Warn:      func(err error) { m.post(warnMsg{err}) },
			Connected: func() { m.post(connectedMsg{}) },
			Typing:    func(ty client.Typing) { m.post(typingMsg{ty}) },
		})
		return recvDoneMsg{err}
	}
}

// post hands an event to the UI, unless it is gone.
func (m *Model) post(ev tea.Msg) {
	select {
	case m.events <- ev:
	case <-m.ctx.Done():
	}
}

func (m *Model) waitEvent() tea.Cmd {
	return func() tea.Msg {
		select {
		case ev := <-m.events:
			return ev
		case <-m.ctx.Done():
			return nil
		}
	}
}

func (m *Model) loadConversations() {
	convs, err := m.c.Conversations(m.ctx)
	if err != nil {
		m.status = say(err)
		return
	}
	// Both kinds, the ordinary and the secret conversation with a person
	// as two rows (issue 9 part 6), and the groups beside them (issue 10).
	m.convs = convs
	if gs, err := m.c.Groups(m.ctx); err == nil {
		m.groups = make(map[string]*client.Group, len(gs))
		for _, g := range gs {
			m.groups[g.Peer()] = g
		}
	}
	if m.peer != "" && m.convIndex(m.peer, m.secret) < 0 {
		m.convs = append([]store.Conversation{{Peer: m.peer, Secret: m.secret}}, m.convs...)
	}
}

// convIndex is the row of the conversation with peer of that kind in the
// list, or -1.
func (m *Model) convIndex(peer string, secret bool) int {
	for i, cv := range m.convs {
		if cv.Peer == peer && cv.Secret == secret {
			return i
		}
	}
	return -1
}

// open shows the ordinary or the secret conversation with peer and marks
// its messages shown.
func (m *Model) open(peer string, secret bool) tea.Cmd {
	if peer != m.peer || secret != m.secret {
		m.follow = true
		m.thread = nil
	}
	m.peer, m.secret = peer, secret
	if k := (convKey{peer, secret}); k != m.typing.conv {
		// Typing in the conversation left has stopped; the line's text
		// counts in this one from its next change.
		m.sendTyping(m.typing.leave())
		m.typing.conv = k
	}
	if m.convIndex(peer, secret) < 0 {
		m.convs = append([]store.Conversation{{Peer: peer, Secret: secret}}, m.convs...)
	}
	return m.reloadThread()
}

// reloadThread reads the open conversation again and marks what it shows
// for the first time as shown.
func (m *Model) reloadThread() tea.Cmd {
	if m.peer == "" {
		return nil
	}
	th, err := m.c.Conversation(m.ctx, m.peer, m.secret, 200)
	if err != nil {
		m.status = say(err)
		return nil
	}
	m.thread = th
	m.contact, _ = m.c.Contact(m.ctx, m.peer) // nil until there is one
	var unshown []int64
	for _, sm := range th {
		if !sm.Shown {
			unshown = append(unshown, sm.ID)
		}
	}
	return m.markShown(unshown)
}

// reload reads the list and the open conversation again.
func (m *Model) reload() tea.Cmd {
	m.loadConversations()
	return m.reloadThread()
}

func (m *Model) markShown(ids []int64) tea.Cmd {
	if len(ids) == 0 {
		return nil
	}
	return func() tea.Msg {
		if err := m.c.MarkShown(m.ctx, ids...); err != nil {
			return errMsg{err}
		}
		return nil // the poll sees the change
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	before := m.input.Value()
	cmd := m.update(msg)
	if _, key := msg.(tea.KeyMsg); key {
		if v := m.input.Value(); v != before {
			m.sendTyping(m.typing.input(m.clock(), convKey{m.peer, m.secret}, v))
		}
	}
	m.layout()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return nil
	case tickMsg:
		m.now = time.Time(msg)
		m.dropExpired()
		m.expireTyping()
		m.sendTyping(m.typing.tick(m.clock()))
		return tick()
	case pollMsg:
		v, err := m.c.Version(m.ctx)
		if err == nil && v != m.version {
			m.version = v
			return tea.Batch(m.reload(), poll())
		}
		return poll()
	case incomingMsg:
		if sm := msg.m; sm != nil && !sm.Outgoing && sm.Kind == store.KindText {
			// A message ends its sender's typing.
			delete(m.typingIn, convKey{sm.Peer, sm.Secret})
		}
		return tea.Batch(m.reload(), m.waitEvent())
	case typingMsg:
		m.gotTyping(msg.t)
		return m.waitEvent()
	case expiredMsg:
		m.remove(msg.ids)
		m.status = fmt.Sprintf("%d message(s) disappeared", len(msg.ids))
		return m.waitEvent()
	case sentMsg:
		var q *client.QueuedError
		switch {
		case errors.As(msg.err, &q):
			m.status = queuedStatus
		case msg.err != nil:
			m.status = say(msg.err)
		}
		m.doneSending(msg.tempID, msg.stored, msg.err)
		return m.reload()
	case errMsg:
		m.status = say(msg.err)
		return nil
	case statusMsg:
		m.status = string(msg)
		return nil
	case warnMsg:
		m.warn = "warning: " + say(msg.err)
		return m.waitEvent()
	case connectedMsg:
		m.warn = ""
		if m.status == queuedStatus {
			m.status = "" // the engine sends what was queued now
		}
		return m.waitEvent()
	case recvDoneMsg:
		if msg.err != nil && m.ctx.Err() == nil {
			m.fatal = msg.err
			m.status = "not receiving: " + say(msg.err)
		}
		return nil
	case tea.MouseMsg:
		if msg.Action == tea.MouseActionPress {
			switch msg.Button {
			case tea.MouseButtonWheelUp:
				m.scroll(-3)
			case tea.MouseButtonWheelDown:
				m.scroll(3)
			}
		}
		return nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return cmd
}

// scroll moves the thread n lines (up if negative); at its end it follows
// what arrives again.
func (m *Model) scroll(n int) {
	if n < 0 {
		m.vp.ScrollUp(-n)
	} else {
		m.vp.ScrollDown(n)
	}
	m.follow = !m.help && m.vp.AtBottom()
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyCtrlC, tea.KeyCtrlD:
		m.cancel()
		return tea.Quit
	case tea.KeyPgUp:
		m.scroll(-max(m.vp.Height-1, 1))
		return nil
	case tea.KeyPgDown:
		m.scroll(max(m.vp.Height-1, 1))
		return nil
	case tea.KeyEsc:
		m.setHelp(false)
		return nil
	case tea.KeyUp, tea.KeyDown:
		if len(m.convs) == 0 {
			return nil
		}
		i := max(m.convIndex(m.peer, m.secret), 0)
		if k.Type == tea.KeyUp {
			i = (i + len(m.convs) - 1) % len(m.convs)
		} else {
			i = (i + 1) % len(m.convs)
		}
		m.setHelp(false)
		return m.open(m.convs[i].Peer, m.convs[i].Secret)
	case tea.KeyEnter:
		text := strings.TrimSpace(m.input.Value())
		m.input.Reset()
		if text == "" {
			return nil
		}
		m.setHelp(false)
		if strings.HasPrefix(text, "/") {
			return m.command(text)
		}
		m.typing.sent()
		return m.send(text)
	case tea.KeyRunes:
		if string(k.Runes) == "?" && m.input.Value() == "" {
			m.setHelp(!m.help)
			return nil
		}
		if !k.Paste {
			// Text, always: the input's key bindings match a key's name,
			// so that runes arriving together as "down" or "end" were
			// taken for those keys and lost.
			m.insert(k.Runes)
			return nil
		}
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

// insert types runes into the input line at its cursor.
func (m *Model) insert(rs []rune) {
	v, p := []rune(m.input.Value()), m.input.Position()
	if m.input.CharLimit > 0 {
		rs = rs[:min(len(rs), max(m.input.CharLimit-len(v), 0))]
	}
	m.input.SetValue(string(v[:p]) + string(rs) + string(v[p:]))
	m.input.SetCursor(p + len(rs))
}

func (m *Model) setHelp(on bool) {
	if on == m.help {
		return
	}
	m.help = on
	if on {
		m.vp.GotoTop()
	} else {
		m.follow = true
	}
}

// command runs a slash command typed in the input line.
func (m *Model) command(line string) tea.Cmd {
	f := strings.Fields(line)
	switch f[0] {
	case "/to", "/open":
		if len(f) != 2 {
			m.status = "usage: /to NAME"
			return nil
		}
		name := client.NormalizeUsername(f[1])
		if !api.ValidUsername(name) {
			m.status = fmt.Sprintf("%q is not a name: %d to %d of a-z, 0-9 and _, starting with a letter", name, api.MinUsernameLen, api.MaxUsernameLen)
			return nil
		}
		return m.open(name, false)
	case "/group":
		if len(f) < 2 {
			m.status = "usage: /group NAME (a group's name or id)"
			return nil
		}
		g, err := m.c.FindGroup(m.ctx, strings.TrimSpace(strings.TrimPrefix(line, "/group")))
		if err != nil {
			m.status = say(err)
			return nil
		}
		m.loadConversations()
		return m.open(g.Peer(), false)
	case "/secret", "/ordinary":
		secret := f[0] == "/secret"
		if m.group(m.peer) != nil {
			m.status = "a group has no secret conversation: /to NAME opens a person's"
			return nil
		}
		switch {
		case len(f) != 1:
			m.status = "usage: " + f[0] + " (with the person whose conversation is open)"
			return nil
		case m.peer == "":
			m.status = "open a conversation first: /to NAME"
			return nil
		case secret && m.peer == m.self:
			m.status = "a secret conversation is between two people: you cannot start one with yourself"
			return nil
		case secret == m.secret:
			m.status = "this is the " + kind(secret) + " conversation with " + m.peer
			return nil
		}
		m.status = ""
		if secret {
			if ok, err := m.c.IsSecret(m.ctx); err == nil && !ok {
				m.status = say(client.ErrNotSecret)
			}
		}
		return m.open(m.peer, secret)
	case "/timer":
		if !m.secret {
			m.status = "timers are for secret conversations: /secret opens the one with " + orNobody(m.peer)
			return nil
		}
		if len(f) != 2 {
			m.status = "usage: /timer DURATION (30s, 5m, 1h or 1d: 5s to 24h), or /timer off"
			return nil
		}
		d, err := client.ParseTimer(f[1])
		if err != nil {
			m.status = "error: " + err.Error()
			return nil
		}
		m.timer = d
		if d == 0 {
			m.status = "timer off: messages you send now stay"
		} else {
			m.status = "messages you send now disappear after " + client.FormatTimer(d)
		}
	case "/verify", "/trust":
		if m.peer == "" {
			m.status = "open a conversation first"
			return nil
		}
		if !m.secret {
			m.status = notVerifiable
			return nil
		}
		var err error
		if f[0] == "/trust" {
			err = m.c.Trust(m.ctx, m.peer)
		} else {
			var sn *client.SafetyNumber
			sn, err = m.c.Verify(m.ctx, m.peer, strings.Join(f[1:], ""))
			if err == nil {
				m.status = "verified: " + sn.Grouped()
			}
		}
		if err != nil {
			m.status = say(err)
		} else if f[0] == "/trust" {
			m.status = "new safety number accepted"
		}
		return m.reload()
	case "/safety":
		if m.peer == "" {
			m.status = "open a conversation first"
			return nil
		}
		if !m.secret {
			m.status = notVerifiable
			return nil
		}
		sn, err := m.c.SafetyNumber(m.ctx, m.peer)
		if err != nil {
			m.status = say(err)
		} else {
			m.status = "safety number with " + m.peer + ": " + sn.Grouped() + "  (compare, then /verify)"
		}
	case "/block", "/unblock":
		return m.block(f)
	case "/file":
		path := strings.TrimSpace(strings.TrimPrefix(line, "/file"))
		if path == "" {
			m.status = "usage: /file PATH (a file of at most 100 MiB, sent in the open conversation)"
			return nil
		}
		if rest, ok := strings.CutPrefix(path, "~/"); ok {
			if h, err := os.UserHomeDir(); err == nil {
				path = filepath.Join(h, rest)
			}
		}
		return m.sendFile(path)
	case "/help":
		m.setHelp(true)
	default:
		m.status = "unknown command " + f[0] + " (? or /help for the keys and commands)"
	}
	return nil
}

// block runs /block and /unblock: of NAME, or of the open conversation's
// person (docs/client.md, "Blocking").
func (m *Model) block(f []string) tea.Cmd {
	var name string
	switch {
	case len(f) == 2:
		name = client.NormalizeUsername(f[1])
	case len(f) == 1 && m.peer != "":
		name = m.peer
	default:
		m.status = "usage: " + f[0] + " [NAME] (without NAME: the person whose conversation is open)"
		return nil
	}
	block := f[0] == "/block"
	m.status = strings.TrimPrefix(f[0], "/") + "ing " + name + "…"
	return func() tea.Msg {
		var err error
		if block {
			err = m.c.Block(m.ctx, name)
		} else {
			err = m.c.Unblock(m.ctx, name)
		}
		switch {
		case err != nil:
			return errMsg{err}
		case block:
			return statusMsg(name + " is blocked: nothing they send reaches you, and they get no receipts or typing from you (/unblock " + name + " undoes it)")
		}
		return statusMsg(name + " is no longer blocked")
	}
}

// notVerifiable answers /safety, /verify and /trust in an ordinary
// conversation (docs/client.md, "Ordinary conversations": trust).
const notVerifiable = "safety numbers cover the secret conversation only for now: /secret opens it"

// kind names a conversation's kind.
func kind(secret bool) string {
	if secret {
		return "secret"
	}
	return "ordinary"
}

func orNobody(peer string) string {
	if peer == "" {
		return "a person (/to NAME first)"
	}
	return peer
}

// send shows the message at once as being sent and sends it in the open
// conversation: an ordinary one to every device of the person
// (SendOrdinary), a secret one with the timer (Send).
func (m *Model) send(text string) tea.Cmd {
	if m.peer == "" {
		m.status = "no conversation open: /to NAME"
		return nil
	}
	timer := m.timer
	if !m.secret {
		timer = 0
	}
	if err := client.CheckText(text, timer); err != nil {
		m.status = say(err)
		return nil
	}
	temp := m.nextID
	m.nextID--
	var last int64
	if len(m.thread) > 0 {
		last = m.thread[len(m.thread)-1].ID
	}
	if g := m.group(m.peer); g != nil {
		timer = 0
	}
	m.sending = append(m.sending, sending{m: &store.Message{ID: temp, Peer: m.peer, Outgoing: true, Secret: m.secret, Body: text,
		SentAt: m.now, At: m.now, Timer: timer, State: store.StatePending}, after: last})
	m.follow = true
	peer, secret := m.peer, m.secret
	return func() tea.Msg {
		var sm *client.Message
		var err error
		if g := m.group(peer); g != nil {
			sm, err = m.c.SendGroup(m.ctx, g.ID, text)
		} else if secret {
			sm, err = m.c.Send(m.ctx, peer, text, timer)
		} else {
			sm, err = m.c.SendOrdinary(m.ctx, peer, text)
		}
		return sentMsg{tempID: temp, stored: sm != nil, err: err}
	}
}

// sendFile sends the file at path in the open conversation (with the
// timer in a secret one), shown at once as being sent.
func (m *Model) sendFile(path string) tea.Cmd {
	if m.peer == "" {
		m.status = "no conversation open: /to NAME"
		return nil
	}
	if err := client.CheckFiles([]string{path}); err != nil {
		m.status = say(err)
		return nil
	}
	timer := m.timer
	if !m.secret {
		timer = 0
	}
	temp := m.nextID
	m.nextID--
	var last int64
	if len(m.thread) > 0 {
		last = m.thread[len(m.thread)-1].ID
	}
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	m.sending = append(m.sending, sending{m: &store.Message{ID: temp, Peer: m.peer, Outgoing: true, Secret: m.secret,
		SentAt: m.now, At: m.now, Timer: timer, State: store.StatePending,
		Attachments: []store.Attachment{{Attachment: content.Attachment{Name: filepath.Base(path), Size: size}, State: store.AttachPending}}}, after: last})
	m.follow = true
	m.status = "sending " + filepath.Base(path) + " (" + client.FormatSize(size) + ")…"
	peer, secret := m.peer, m.secret
	return func() tea.Msg {
		sm, err := m.c.SendFiles(m.ctx, peer, "", timer, secret, []string{path})
		return sentMsg{tempID: temp, stored: sm != nil, err: err}
	}
}

// doneSending drops the stand-in of a message whose Send returned. One
// that was never stored (refused before encrypting) stays, marked not sent.
func (m *Model) doneSending(id int64, stored bool, err error) {
	kept := m.sending[:0]
	for _, s := range m.sending {
		if s.m.ID != id {
			kept = append(kept, s)
		} else if err != nil && !stored && !m.stored(s) {
			s.m.State = store.StateFailed
			kept = append(kept, s)
		}
	}
	m.sending = kept
}

// stored reports whether the message being sent is in the thread as read
// from the store.
func (m *Model) stored(s sending) bool {
	for _, t := range m.thread {
		if t.ID > s.after && t.Outgoing && t.Peer == s.m.Peer && t.Secret == s.m.Secret && t.Body == s.m.Body {
			return true
		}
	}
	return false
}

func (m *Model) remove(ids []int64) {
	gone := make(map[int64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	kept := m.thread[:0]
	for _, t := range m.thread {
		if !gone[t.ID] {
			kept = append(kept, t)
		}
	}
	m.thread = kept
}

// dropExpired hides what expired by the clock even before the engine's
// deletion reports it.
func (m *Model) dropExpired() {
	kept := m.thread[:0]
	for _, t := range m.thread {
		if t.ExpiresAt.IsZero() || t.ExpiresAt.After(m.now) {
			kept = append(kept, t)
		}
	}
	m.thread = kept
}

// Styles. Secret conversations wear black and violet, as Messenger's do.
var (
	secretBar = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("231")).Background(lipgloss.Color("55")).Padding(0, 1)
	plainBar  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("252")).Background(lipgloss.Color("236")).Padding(0, 1)
	lockStyle = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("141"))
	selStyle  = lipgloss.NewStyle().Bold(true).Reverse(true)
	dimStyle  = lipgloss.NewStyle().Faint(true)
	meStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("141"))
	peerStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("87"))
	noteStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("214")).Bold(true)
	timeStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("203"))
)

// The frame, from the top: the list on the left and, right of it, the
// header and the thread; then the input line and the status lines, the
// full width. Its line count is the terminal's height at any size.
const (
	maxListWidth = 24
	minListWidth = 10
	maxHeader    = 3 // lines of the header, wrapped
)

func (m *Model) listWidth() int { return min(max(m.width/4, minListWidth), maxListWidth) }

// threadWidth is the width of the pane right of the list and its "│ ".
func (m *Model) threadWidth() int { return max(m.width-m.listWidth()-2, 1) }

// statusLines are the lines under the input line: a connection warning,
// then the last status, wrapped, at most a few.
func (m *Model) statusLines() []string {
	text := termsafe.Line(strings.TrimSpace(m.warn + "  " + m.status))
	if text == "" {
		return []string{""}
	}
	most := min(max((m.height-4)/5, 1), 3)
	return clip(strings.Split(ansi.Wrap(text, max(m.width, 1), ""), "\n"), most, max(m.width, 1))
}

// headerLines are the open conversation's bar, wrapped to the pane: the
// violet bar of a secret conversation, or the grey one of an ordinary one,
// which never carries the lock.
func (m *Model) headerLines() []string {
	w := m.threadWidth()
	if m.peer == "" {
		return []string{dimStyle.Render(ansi.Truncate("no conversation open: /to NAME", w, "…"))}
	}
	peer, flag := termsafe.Line(m.peer), ""
	if g := m.group(m.peer); g != nil {
		name := termsafe.Line(g.Name)
		n := fmt.Sprintf("%d members", len(g.Members))
		if !g.Member {
			n = "you are not a member"
		}
		return m.bar(plainBar, "", "# "+name+" · "+n+" · end-to-end encrypted, on every member's devices",
			"# "+name+" · "+n, "# "+name)
	}
	if !m.secret {
		return m.bar(plainBar, "", peer+" · end-to-end encrypted, on all your devices · /secret for the secret conversation",
			peer+" · end-to-end encrypted, on all your devices", peer)
	}
	if ct := m.contact; ct != nil {
		switch {
		case ct.NeedsConfirm || ct.Pending != nil:
			flag = "⚠ SAFETY NUMBER CHANGED"
		case ct.Verified:
			flag = "✔ verified"
		}
	}
	// The mark of a secret conversation and the safety number's state are
	// never left out.
	return m.bar(secretBar, flag,
		join("🔒 SECRET CONVERSATION with "+peer, flag, "end-to-end encrypted, on this device only"),
		join("🔒 SECRET CONVERSATION with "+peer, flag),
		join("🔒 SECRET · "+peer, strings.Replace(flag, "SAFETY NUMBER ", "", 1)))
}

// bar is the longest of the forms of a header that fits, in style.
func (m *Model) bar(style lipgloss.Style, flag string, forms ...string) []string {
	w := m.threadWidth()
	most := maxHeader
	if m.height < 12 {
		most = 1
	}
	inner := max(w-2, 1)
	var lines []string
	for _, head := range forms {
		lines = strings.Split(ansi.Wrap(head, inner, ""), "\n")
		if len(lines) <= most {
			break
		}
	}
	if len(lines) > most && flag != "" {
		most++ // a warning is worth a line of the thread
	}
	lines = clip(lines, most, inner)
	for i, l := range lines {
		lines[i] = style.Width(w).Render(l)
	}
	return lines
}

// join joins the parts that are not empty with " · ".
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " · ")
}

// clip keeps at most n lines, marking a cut on the last one.
func clip(lines []string, n, w int) []string {
	if len(lines) <= n {
		return lines
	}
	lines = lines[:n]
	lines[n-1] = ansi.Truncate(lines[n-1], max(w-1, 0), "") + "…"
	return lines
}

// layout sizes the thread's viewport to what the frame leaves it and fills
// it, after every change.
func (m *Model) layout() {
	tw := m.threadWidth()
	body := m.height - 1 - len(m.statusLines())
	m.vp.Width, m.vp.Height = tw, max(body-len(m.headerLines()), 0)
	prefix := 0
	if m.timed() {
		prefix = ansi.StringWidth(m.timerMark()) + 1
	}
	m.input.Width = max(m.width-prefix-ansi.StringWidth(m.input.Prompt)-1, 1)
	if m.help {
		m.vp.SetContent(strings.Join(m.helpLines(tw), "\n"))
		return
	}
	lines := m.threadLines(tw)
	if l := m.typingLine(); l != "" {
		lines = append(lines, ansi.Truncate(l, tw, "…"))
	}
	m.vp.SetContent(strings.Join(lines, "\n"))
	if m.follow {
		m.vp.GotoBottom()
	}
}

// timed reports whether what is typed now gets a timer: in a secret
// conversation, with /timer set.
func (m *Model) timed() bool { return m.secret && m.timer > 0 }

func (m *Model) timerMark() string { return timeStyle.Render("⏱ " + client.FormatTimer(m.timer)) }

// View draws the screen: exactly height lines, none wider than width.
func (m *Model) View() string {
	w, h := max(m.width, 1), max(m.height, 1)
	status := m.statusLines()
	body := max(h-1-len(status), 0)
	lw, tw := m.listWidth(), m.threadWidth()

	right := m.headerLines()
	pane := strings.Split(m.vp.View(), "\n")
	if !m.help && !m.vp.AtBottom() && len(pane) > 0 {
		pane[len(pane)-1] = dimStyle.Render(ansi.Truncate("↓ more below: PgDn", tw, "…"))
	}
	right = append(right, pane...)
	left := m.listLines(lw, body)

	out := make([]string, 0, h)
	for i := 0; i < body; i++ {
		var l, r string
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out = append(out, pad(l, lw)+dimStyle.Render("│")+" "+r)
	}
	prompt := m.input.View()
	if m.timed() {
		prompt = m.timerMark() + " " + prompt
	}
	out = append(out, prompt)
	for _, s := range status {
		out = append(out, dimStyle.Render(s))
	}
	out = out[:min(len(out), h)]
	for i, l := range out {
		out[i] = ansi.Truncate(l, w, "")
	}
	return strings.Join(out, "\n")
}

// pad truncates or pads s to exactly w cells.
func pad(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	return s + strings.Repeat(" ", max(w-ansi.StringWidth(s), 0))
}

// listLines is the conversation list, scrolled to keep the open one in
// view: a title, then one row per conversation.
func (m *Model) listLines(w, h int) []string {
	out := []string{dimStyle.Render(ansi.Truncate("conversations", w, "…"))}
	if len(m.convs) == 0 {
		return append(out, dimStyle.Render(ansi.Truncate("none yet: /to NAME", w, "…")))
	}
	rows := max(h-1, 1)
	sel := max(m.convIndex(m.peer, m.secret), 0)
	first := max(min(sel-rows/2, len(m.convs)-rows), 0)
	for i := first; i < len(m.convs) && i < first+rows; i++ {
		cv := m.convs[i]
		open := cv.Peer == m.peer && cv.Secret == m.secret
		// A secret conversation's row starts with the lock, an ordinary
		// one's with two spaces: the same person's two rows differ at
		// their first cell.
		line := "  " + termsafe.Line(cv.Peer)
		if cv.Secret {
			line = "🔒 " + termsafe.Line(cv.Peer)
		} else if g := m.group(cv.Peer); g != nil {
			line = "# " + termsafe.Line(g.Name)
		}
		if n := cv.Unshown; n > 0 && !open {
			// The count stays in a narrow list; the name gives way.
			count := fmt.Sprintf(" (%d)", n)
			line = ansi.Truncate(line, max(w-ansi.StringWidth(count), 3), "…") + count
		}
		line = pad(line, w)
		switch {
		case open:
			line = selStyle.Render(line)
		case cv.Secret:
			line = lockStyle.Render(line)
		}
		out = append(out, line)
	}
	return out
}

func (m *Model) helpLines(w int) []string {
	help := []string{
		"keys",
		"  Enter         send the line",
		"  ↑ / ↓         previous / next conversation",
		"  PgUp / PgDn   scroll the conversation back / forward",
		"  mouse wheel   scroll the conversation",
		"  ?             this help (on an empty line); Esc closes it",
		"  Ctrl+C        quit",
		"",
		"commands",
		"  /to NAME          open or start the ordinary conversation with NAME",
		"  /secret           open the secret conversation with this person",
		"  /ordinary         back to the ordinary conversation",
		"  /group NAME       open a group's conversation (hush group create makes one)",
		"  /timer 30s        what you send from now in a secret conversation",
		"                    disappears after 30s (30s, 5m, 1h or 1d: 5s to 24h)",
		"  /timer off        what you send from now stays",
		"  /file PATH        send the file at PATH (at most 100 MiB)",
		"  /safety           show the safety number (secret conversation)",
		"  /verify [NUMBER]  mark it verified (checking NUMBER if given)",
		"  /trust            accept a changed safety number unverified",
		"  /block [NAME]     block NAME (or this person) on all your devices",
		"  /unblock [NAME]   let them reach you again",
		"  /help             this help",
	}
	return strings.Split(ansi.Wrap(strings.Join(help, "\n"), max(w, 1), ""), "\n")
}

// indent is the hanging indent of a message's continuation lines.
const indent = 2

func (m *Model) threadLines(w int) []string {
	var out []string
	all := m.thread
	for _, s := range m.sending {
		// Only those typed in the open conversation.
		if s.m.Peer == m.peer && s.m.Secret == m.secret && !m.stored(s) {
			all = append(all[:len(all):len(all)], s.m)
		}
	}
	for _, t := range all {
		ts := t.At.Local().Format("15:04")
		var line string
		// Peer text can hold anything: termsafe makes it inert, and its
		// continuation lines are indented, so that no line of it can pass
		// for a message of its own.
		body := termsafe.Text(t.Body)
		switch {
		case t.Kind == store.KindNotice:
			line = noteStyle.Render("⚠ " + body)
		case t.Outgoing:
			line = dimStyle.Render(ts) + " " + meStyle.Render("you") + ": " + body + " " + stateMark(t.State)
		case t.Sender != "":
			// A group's line: who said it.
			line = dimStyle.Render(ts) + " " + peerStyle.Render(termsafe.Line(t.Sender)) + ": " + body
		default:
			line = dimStyle.Render(ts) + " " + peerStyle.Render(termsafe.Line(t.Peer)) + ": " + body
		}
		if !t.ExpiresAt.IsZero() {
			left := t.ExpiresAt.Sub(m.now).Round(time.Second)
			line += " " + timeStyle.Render(fmt.Sprintf("⏱ %v", max(left, 0)))
		} else if t.Timer > 0 {
			line += " " + timeStyle.Render(fmt.Sprintf("⏱ %v", t.Timer))
		}
		for _, a := range t.Attachments {
			line += "\n" + attachmentLine(a, t.Outgoing)
		}
		wrapped := strings.Split(lipgloss.NewStyle().Width(max(w-indent, 1)).Render(line), "\n")
		for i := 1; i < len(wrapped); i++ {
			wrapped[i] = strings.Repeat(" ", indent) + wrapped[i]
		}
		out = append(out, wrapped...)
	}
	return out
}

// attachmentLine is a file of a message: its name (made safe), its size,
// and where it was saved.
func attachmentLine(a store.Attachment, outgoing bool) string {
	line := "📎 " + termsafe.Line(content.FileName(a.Name)) + " (" + client.FormatSize(a.Size) + ")"
	switch {
	case a.State == store.AttachSaved && outgoing:
		return line + dimStyle.Render(" copy in "+termsafe.Line(a.Path))
	case a.State == store.AttachSaved:
		return line + dimStyle.Render(" saved as "+termsafe.Line(a.Path))
	case a.State == store.AttachRefused:
		return line + noteStyle.Render(" refused: nothing saved")
	case outgoing:
		return line + dimStyle.Render(" uploading…")
	}
	return line + dimStyle.Render(" not downloaded yet")
}

// say is an error of the engine in the UI's words: the engine says what
// is wrong, the UI adds what to do here.
func say(err error) string {
	var nc *client.NeedsConfirmError
	switch {
	case errors.As(err, &nc):
		return err.Error() + ": compare the new number (/safety), then /verify or /trust, and send again"
	case errors.Is(err, client.ErrBusy):
		return err.Error() + " (hush recv --follow or another hush chat); stop it first"
	case errors.Is(err, client.ErrNotSecret):
		return err.Error() + " (hush device make-secret moves them here)"
	}
	var be *client.BlockedError
	if errors.As(err, &be) {
		return err.Error() + ": /unblock " + be.Name + " first"
	}
	return err.Error()
}

func stateMark(s store.State) string {
	switch s {
	case store.StatePending:
		return dimStyle.Render("…sending")
	case store.StateSent:
		return dimStyle.Render("✓ sent")
	case store.StateFailed:
		return noteStyle.Render("✗ not sent")
	case store.StateDelivered:
		return dimStyle.Render("✓✓ delivered")
	case store.StateRead:
		return dimStyle.Render("✓✓ read")
	}
	return ""
}

// group is the group whose conversation has the Peer peer, or nil.
func (m *Model) group(peer string) *client.Group {
	if _, ok := client.IsGroupPeer(peer); !ok {
		return nil
	}
	if g := m.groups[peer]; g != nil {
		return g
	}
	id, _ := client.IsGroupPeer(peer)
	g, err := m.c.FindGroup(m.ctx, fmt.Sprintf("%x", id[:]))
	if err != nil {
		return &client.Group{ID: fmt.Sprintf("%x", id[:]), Name: "(a group)"}
	}
	if m.groups == nil {
		m.groups = make(map[string]*client.Group)
	}
	m.groups[peer] = g
	return g
}
