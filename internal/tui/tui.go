// Package tui is hush's terminal UI (bubbletea): a conversation list, the
// open conversation's thread and an input line. It receives while you
// type, marks secret conversations unmistakably, counts down each timed
// message and removes it when its time is up, shows key-change notices and
// the delivery state of what you send. All logic is the engine's
// (internal/client); this package only presents it.
package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/hushmsg/hush/internal/client"
	"github.com/hushmsg/hush/internal/client/store"
)

// Run shows the UI until the person quits (ctrl+c) or ctx ends.
func Run(ctx context.Context, c *client.Client, peer string) error {
	m := New(ctx, c, peer)
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx))
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
		m      *store.Message
		err    error
	}
	shownMsg    struct{ ids []int64 }
	recvDoneMsg struct{ err error }
	warnMsg     struct{ err error }
	tickMsg     time.Time
	reloadMsg   struct{}
)

// Model is the UI's state.
type Model struct {
	ctx      context.Context
	cancel   context.CancelFunc
	c        *client.Client
	self     string
	events   chan tea.Msg
	recvDone chan struct{}

	convs  []string // peers, most recent first
	unread map[string]int
	sel    int    // selected conversation in the list
	peer   string // the open conversation
	thread []*store.Message
	timer  time.Duration // timer of messages sent from now on
	nextID int64         // negative ids of messages being sent

	input  textinput.Model
	status string
	fatal  error
	width  int
	height int
	now    time.Time

	initCmd tea.Cmd
}

// New makes the model for c, opening the conversation with peer if given.
func New(ctx context.Context, c *client.Client, peer string) *Model {
	ctx, cancel := context.WithCancel(ctx)
	in := textinput.New()
	in.Placeholder = "type a message; /to NAME starts a conversation; /timer 30s; /help"
	in.Prompt = "> "
	in.CharLimit = 4096
	in.Focus()
	m := &Model{ctx: ctx, cancel: cancel, c: c, self: c.Account().Username, events: make(chan tea.Msg, 256), recvDone: make(chan struct{}),
		unread: make(map[string]int), input: in, width: 80, height: 24, now: time.Now(), nextID: -1}
	m.loadConversations()
	if peer != "" {
		m.initCmd = m.open(peer)
	} else if len(m.convs) > 0 {
		m.initCmd = m.open(m.convs[0])
	}
	return m
}

func (m *Model) stop() { m.cancel() }

// Init starts receiving and the clock.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(textinput.Blink, m.receive(), m.waitEvent(), tick(), m.initCmd)
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// receive runs the engine's receive loop, forwarding what it hands over.
func (m *Model) receive() tea.Cmd {
	return func() tea.Msg {
		defer close(m.recvDone)
		err := m.c.Receive(m.ctx, client.ReceiveOptions{
			Follow:  true,
			Handle:  func(sm *store.Message) { m.post(incomingMsg{sm}) },
			Expired: func(ids []int64) { m.post(expiredMsg{ids}) },
			Warn:    func(err error) { m.post(warnMsg{err}) },
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
		m.status = err.Error()
		return
	}
	m.convs = m.convs[:0]
	for _, cv := range convs {
		m.convs = append(m.convs, cv.Peer)
	}
	if m.peer != "" && !contains(m.convs, m.peer) {
		m.convs = append([]string{m.peer}, m.convs...)
	}
	if m.sel >= len(m.convs) {
		m.sel = max(len(m.convs)-1, 0)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// open shows the conversation with peer and marks its messages shown.
func (m *Model) open(peer string) tea.Cmd {
	m.peer = peer
	if !contains(m.convs, peer) {
		m.convs = append([]string{peer}, m.convs...)
	}
	for i, p := range m.convs {
		if p == peer {
			m.sel = i
		}
	}
	delete(m.unread, peer)
	th, err := m.c.History(m.ctx, peer, 200)
	if err != nil {
		m.status = err.Error()
		return nil
	}
	m.thread = th
	var unshown []int64
	for _, sm := range th {
		if !sm.Shown {
			unshown = append(unshown, sm.ID)
		}
	}
	return m.markShown(unshown)
}

func (m *Model) markShown(ids []int64) tea.Cmd {
	if len(ids) == 0 {
		return nil
	}
	return func() tea.Msg {
		if err := m.c.MarkShown(m.ctx, ids...); err != nil {
			return sentMsg{err: err}
		}
		return shownMsg{ids}
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.Width = max(m.width-listWidth-6, 10)
		return m, nil
	case tickMsg:
		m.now = time.Time(msg)
		m.dropExpired()
		return m, tick()
	case incomingMsg:
		return m, tea.Batch(m.incoming(msg.m), m.waitEvent())
	case expiredMsg:
		m.remove(msg.ids)
		m.status = fmt.Sprintf("%d message(s) disappeared", len(msg.ids))
		return m, m.waitEvent()
	case shownMsg:
		for _, id := range msg.ids {
			if sm, err := m.c.Store().Read().Message(m.ctx, id); err == nil {
				m.replace(id, sm)
			}
		}
		return m, nil
	case sentMsg:
		if msg.err != nil {
			m.status = msg.err.Error()
		}
		if msg.m != nil {
			m.replace(msg.tempID, msg.m)
		} else if msg.tempID != 0 {
			m.markFailed(msg.tempID)
		}
		m.loadConversations()
		return m, nil
	case warnMsg:
		m.status = "warning: " + msg.err.Error()
		return m, m.waitEvent()
	case recvDoneMsg:
		if msg.err != nil && m.ctx.Err() == nil {
			m.fatal = msg.err
			m.status = "not receiving: " + msg.err.Error()
		}
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func (m *Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.Type {
	case tea.KeyCtrlC, tea.KeyCtrlD:
		m.cancel()
		return m, tea.Quit
	case tea.KeyUp, tea.KeyDown:
		if len(m.convs) == 0 {
			return m, nil
		}
		if k.Type == tea.KeyUp {
			m.sel = (m.sel + len(m.convs) - 1) % len(m.convs)
		} else {
			m.sel = (m.sel + 1) % len(m.convs)
		}
		return m, m.open(m.convs[m.sel])
	case tea.KeyEnter:
		text := strings.TrimSpace(m.input.Value())
		m.input.Reset()
		if text == "" {
			return m, nil
		}
		if strings.HasPrefix(text, "/") {
			return m, m.command(text)
		}
		return m, m.send(text)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
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
		return m.open(client.NormalizeUsername(f[1]))
	case "/timer":
		if len(f) != 2 {
			m.status = "usage: /timer 30s (5s to 24h), or /timer off"
			return nil
		}
		if f[1] == "off" || f[1] == "0" {
			m.timer = 0
			m.status = "timer off"
			return nil
		}
		d, err := time.ParseDuration(f[1])
		if err == nil {
			err = client.CheckText("x", d)
		}
		if err != nil {
			m.status = "bad timer: " + err.Error()
			return nil
		}
		m.timer = d
		m.status = fmt.Sprintf("messages you send now disappear after %v", d)
	case "/verify", "/trust":
		if m.peer == "" {
			m.status = "open a conversation first"
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
			m.status = err.Error()
		} else if f[0] == "/trust" {
			m.status = "new safety number accepted"
		}
		return m.open(m.peer)
	case "/safety":
		if m.peer == "" {
			m.status = "open a conversation first"
			return nil
		}
		sn, err := m.c.SafetyNumber(m.ctx, m.peer)
		if err != nil {
			m.status = err.Error()
		} else {
			m.status = "safety number with " + m.peer + ": " + sn.Grouped() + "  (compare, then /verify)"
		}
	case "/help":
		m.status = "/to NAME  /timer 30s|off  /safety  /verify [NUMBER]  /trust  up/down: conversations  ctrl+c: quit"
	default:
		m.status = "unknown command " + f[0] + " (/help)"
	}
	return nil
}

// send shows the message at once as being sent and sends it.
func (m *Model) send(text string) tea.Cmd {
	if m.peer == "" {
		m.status = "no conversation open: /to NAME"
		return nil
	}
	if err := client.CheckText(text, m.timer); err != nil {
		m.status = err.Error()
		return nil
	}
	temp := m.nextID
	m.nextID--
	m.thread = append(m.thread, &store.Message{ID: temp, Peer: m.peer, Outgoing: true, Secret: true, Body: text,
		SentAt: m.now, At: m.now, Timer: m.timer, State: store.StatePending})
	peer, timer := m.peer, m.timer
	return func() tea.Msg {
		sm, err := m.c.Send(m.ctx, peer, text, timer)
		return sentMsg{tempID: temp, m: sm, err: err}
	}
}

func (m *Model) incoming(sm *store.Message) tea.Cmd {
	if !contains(m.convs, sm.Peer) {
		m.convs = append([]string{sm.Peer}, m.convs...)
	}
	if sm.Peer != m.peer {
		m.unread[sm.Peer]++
		if m.peer == "" {
			return m.open(sm.Peer)
		}
		return nil
	}
	m.thread = append(m.thread, sm)
	return m.markShown([]int64{sm.ID})
}

func (m *Model) replace(id int64, sm *store.Message) {
	for i, t := range m.thread {
		if t.ID == id {
			m.thread[i] = sm
			return
		}
	}
}

func (m *Model) markFailed(id int64) {
	for _, t := range m.thread {
		if t.ID == id {
			t.State = store.StateFailed
		}
	}
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
const listWidth = 24

var (
	secretBar = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("231")).Background(lipgloss.Color("55")).Padding(0, 1)
	listStyle = lipgloss.NewStyle().Width(listWidth).BorderStyle(lipgloss.NormalBorder()).BorderRight(true).PaddingRight(1)
	selStyle  = lipgloss.NewStyle().Bold(true).Reverse(true)
	dimStyle  = lipgloss.NewStyle().Faint(true)
	meStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("141"))
	peerStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("87"))
	noteStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("214")).Bold(true)
	timeStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("203"))
)

// View draws the screen.
func (m *Model) View() string {
	var list strings.Builder
	list.WriteString(dimStyle.Render("conversations") + "\n")
	for i, p := range m.convs {
		line := "🔒 " + p
		if n := m.unread[p]; n > 0 {
			line += fmt.Sprintf(" (%d)", n)
		}
		if i == m.sel {
			line = selStyle.Render(line)
		}
		list.WriteString(line + "\n")
	}
	if len(m.convs) == 0 {
		list.WriteString(dimStyle.Render("none yet: /to NAME") + "\n")
	}
	threadW := max(m.width-listWidth-3, 20)
	var th strings.Builder
	if m.peer != "" {
		head := "🔒 SECRET CONVERSATION with " + m.peer + " · end-to-end encrypted, on this device only"
		if ct, err := m.c.Contact(m.ctx, m.peer); err == nil {
			switch {
			case ct.NeedsConfirm || ct.Pending != nil:
				head += " · ⚠ SAFETY NUMBER CHANGED"
			case ct.Verified:
				head += " · ✔ verified"
			}
		}
		th.WriteString(secretBar.Width(threadW).Render(head) + "\n")
	} else {
		th.WriteString(dimStyle.Render("no conversation open") + "\n")
	}
	lines := m.threadLines(threadW)
	room := max(m.height-5, 3)
	if len(lines) > room {
		lines = lines[len(lines)-room:]
	}
	th.WriteString(strings.Join(lines, "\n"))
	body := lipgloss.JoinHorizontal(lipgloss.Top, listStyle.Height(max(m.height-4, 3)).Render(list.String()), " ", th.String())
	prompt := m.input.View()
	if m.timer > 0 {
		prompt = timeStyle.Render("⏱ "+m.timer.String()) + " " + prompt
	}
	return body + "\n" + prompt + "\n" + dimStyle.Render(m.status)
}

func (m *Model) threadLines(w int) []string {
	var out []string
	for _, t := range m.thread {
		ts := t.At.Local().Format("15:04")
		var line string
		switch {
		case t.Kind == store.KindNotice:
			line = noteStyle.Render("⚠ " + t.Body)
		case t.Outgoing:
			line = dimStyle.Render(ts) + " " + meStyle.Render("you") + ": " + t.Body + " " + stateMark(t.State)
		default:
			line = dimStyle.Render(ts) + " " + peerStyle.Render(t.Peer) + ": " + t.Body
		}
		if !t.ExpiresAt.IsZero() {
			left := t.ExpiresAt.Sub(m.now).Round(time.Second)
			line += " " + timeStyle.Render(fmt.Sprintf("⏱ %v", max(left, 0)))
		} else if t.Timer > 0 {
			line += " " + timeStyle.Render(fmt.Sprintf("⏱ %v", t.Timer))
		}
		out = append(out, lipgloss.NewStyle().Width(w).Render(line))
	}
	return out
}

func stateMark(s int) string {
	switch s {
	case store.StatePending:
		return dimStyle.Render("…sending")
	case store.StateSent:
		return dimStyle.Render("✓ sent")
	case store.StateFailed:
		return noteStyle.Render("✗ not sent")
	}
	return ""
}
