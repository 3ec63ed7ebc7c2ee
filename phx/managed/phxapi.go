package managed

// Every call into package phx is in this file, so that a change of phx's
// API (options, Connect's context) is an edit here and nowhere else.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/phxgo/phxgo/phx"
)

// dial opens one socket of the pool. ctx bounds the dial; the socket lives
// until closeSocket or until the client's context, narrowed so that the
// pool can end one socket alone, ends (Config.Context).
func dial(ctx context.Context, endpoint string, cfg phx.Config) (*phx.Socket, context.CancelFunc, error) {
	sctx, cancel := context.WithCancel(ctx)
	cfg.Context = sctx
	s, err := phx.Connect(sctx, endpoint, &cfg)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return s, cancel, nil
}

func closeSocket(s *phx.Socket, cancel context.CancelFunc) {
	_ = s.Close()
	cancel()
}

// closeSocketWith closes s with the close code given to Disconnect (zero,
// or a code a close frame may not carry: Close's 1000).
func closeSocketWith(s *phx.Socket, cancel context.CancelFunc, code int) {
	if code == 0 || s.CloseWith(code, "") != nil {
		_ = s.Close()
	}
	cancel()
}

// openChannel makes the channel of topic on s with params called on every
// (re)join, and subscribes to all its events before the join so that nothing
// of the first join session is missed. The subscription blocks rather than
// drop: the client's actor reads it as fast as it folds, and a lost
// presence_diff would leave the presence list wrong without anyone knowing.
// A subscription that cannot be made (the socket is closing) is reported
// by forwardChannel as the subscription's end.
func openChannel(ctx context.Context, s *phx.Socket, topic string, params func() any, buf int) (*phx.Channel, *phx.Subscription, error) {
	ch := s.Channel(topic, phx.ParamsFunc(params))
	sub, err := ch.Subscribe(ctx, phx.WithBuffer(buf), phx.WithOverflow(phx.Block))
	return ch, sub, err
}

func joinChannel(ctx context.Context, ch *phx.Channel, timeout time.Duration) (json.RawMessage, error) {
	return ch.Join(ctx, phx.WithTimeout(timeout))
}

func pushChannel(ctx context.Context, ch *phx.Channel, event string, payload any, timeout time.Duration) (phx.Reply, error) {
	return ch.Push(ctx, event, payload, phx.WithTimeout(timeout))
}

func leaveChannel(ctx context.Context, ch *phx.Channel, timeout time.Duration) error {
	return ch.Leave(ctx, phx.WithTimeout(timeout))
}

func channelJoined(ch *phx.Channel) bool { return ch.State() == phx.ChannelJoined }

// sockEvent is a socket status event in the client's own terms.
type sockEvent struct {
	kind      sockEventKind
	topic     string
	url       string
	err       error
	code      int
	reconnect bool
}

type sockEventKind int

const (
	evIgnored sockEventKind = iota
	evConnected
	evDisconnected
	evClosed
	evJoined
	evRejoining
	evEnded
)

func translate(st phx.Status) sockEvent {
	switch e := st.(type) {
	case phx.Connected:
		return sockEvent{kind: evConnected, url: e.URL}
	case phx.Disconnected:
		return sockEvent{kind: evDisconnected, err: e.Err, code: e.Code, reconnect: e.Reconnect}
	case phx.Closed:
		return sockEvent{kind: evClosed, err: e.Err, code: phx.CloseCode(e.Err)}
	case phx.Joined:
		return sockEvent{kind: evJoined, topic: e.Topic}
	case phx.Rejoining:
		return sockEvent{kind: evRejoining, topic: e.Topic, err: e.Err}
	case phx.ChannelEnded:
		return sockEvent{kind: evEnded, topic: e.Topic, err: e.Err}
	}
	return sockEvent{}
}

// Outcomes of a push or a join, as the client acts on them.
func timedOut(err error) bool {
	return errors.Is(err, phx.ErrTimeout) || errors.Is(err, phx.ErrDisconnected)
}

func replyError(err error) (json.RawMessage, bool) {
	re, ok := phx.AsReplyError(err)
	if !ok {
		return nil, false
	}
	return json.RawMessage(re.Response), true
}

// tooManyChannels reports a join refused for the socket's channel limit:
// Phoenix answers {"reason":"too many channels joined"}.
func tooManyChannels(err error) bool {
	resp, ok := replyError(err)
	return ok && strings.Contains(string(resp), "too many channels")
}

func protocolOf(cfg *phx.Config) Protocol {
	p := Protocol{Transport: "websocket", Serializer: cfg.Vsn}
	if p.Serializer == "" {
		p.Serializer = "2.0.0"
	}
	switch cfg.Transport.(type) {
	case nil:
		if cfg.LongPollFallback > 0 {
			p.Transport = "websocket, long-poll fallback"
		}
	case *phx.LongPoll:
		p.Transport = "longpoll"
	default:
		p.Transport = "custom"
	}
	return p
}

// forwardChannel hands every message of sub to the client's actor with
// send, in order, then reports the subscription's end. It is the one
// goroutine a joined channel adds to the client.
func forwardChannel(ctx context.Context, sub *phx.Subscription, send func(context.Context, msg) error,
	t *topic, gen int, subErr error) {
	if sub == nil {
		_ = send(ctx, subEnded{t: t, gen: gen, err: subErr})
		return
	}
	defer sub.Close()
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				_ = send(ctx, subEnded{t: t, gen: gen, err: sub.Err()})
				return
			}
			in := inbound{Event: m.Event, Payload: m.Payload, JoinRef: m.JoinRef}
			if send(ctx, chanMsg{t: t, gen: gen, m: in}) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// forwardStatus hands a socket's status events to the client's actor until
// the socket's stream closes (after its final Closed event).
func forwardStatus(ctx context.Context, s *phx.Socket, send func(context.Context, msg) error, sock *sockRec) {
	st := s.Status()
	for {
		select {
		case e, ok := <-st:
			if !ok {
				return
			}
			if ev := translate(e); ev.kind != evIgnored {
				if send(ctx, sockMsg{sock: sock, ev: ev}) != nil {
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func socketDone(s *phx.Socket) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}
