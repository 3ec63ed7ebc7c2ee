package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/presence"
)

// The last act: dee is driven by a managed.Client, which connects, joins,
// queues and retries by itself. Dee starts with a token the server refuses
// (DemoConnect refuses token=bad), so its first pushes wait in the client's
// queue until the token is renewed, as a program whose user writes while
// offline would see it.

const deeTopic = "room:lobby"

// deeEvent stands for one of dee's client events in until's predicates.
type deeEvent struct {
	presence.Event
	ev managed.Event
}

// deeSaw is satisfied by dee's first event of type T that match accepts.
func deeSaw[T managed.Event](match func(T) bool) func(presence.Event) bool {
	return func(ev presence.Event) bool {
		de, ok := ev.(deeEvent)
		if !ok {
			return false
		}
		e, ok := de.ev.(T)
		return ok && match(e)
	}
}

// scaled is a duration of the story at speed 1 shortened to the demo's
// pace; -speed 0 runs it at a hundred times.
func (d *demo) scaled(seconds float64) time.Duration {
	speed := d.speed
	if speed == 0 {
		speed = 100
	}
	return time.Duration(seconds / speed * float64(time.Second))
}

func (d *demo) deeOffline() error {
	d.deeRefused.Store(true)
	retry := d.scaled(0.25)
	d.dee = managed.New(d.ctx, d.url, &managed.Config{
		Socket: phx.Config{
			Params: url.Values{"user": {"dee"}},
			// Called on every connection attempt: the token of the moment.
			ParamsFunc: func() url.Values {
				if d.deeRefused.Load() {
					return url.Values{"token": {"bad"}}
				}
				return url.Values{"token": {"fresh"}}
			},
			Reconnect: func() backoff.BackOff { return backoff.NewConstantBackOff(retry) },
		},
	})
	d.deeEvents = d.dee.Events()
	if err := d.dee.SetJoinConfig(d.ctx, managed.JoinConfig{Topic: deeTopic, Payload: map[string]string{"device": "watch"}}); err != nil {
		return err
	}
	d.say("dee", "a managed.Client, offline: the server refuses its token; dee writes anyway")
	for i, body := range []string{"written offline", "also offline, sent second"} {
		p := managed.Push{Topic: deeTopic, Event: "new_msg", Payload: map[string]string{"user": "dee", "body": body},
			Ref: fmt.Sprintf("offline-%d", i+1)}
		if err := d.dee.Send(d.ctx, p); err != nil {
			return fmt.Errorf("dee sending: %w", err)
		}
		d.say("dee", "send %s %s (Send returns once it is queued)", p.Event, demoPayload(p.Payload))
	}
	// The client tried to connect for the pushes; wait until it is refused.
	if err := d.until(deeSaw(func(managed.SocketError) bool { return true })); err != nil {
		return err
	}
	queued, err := d.dee.QueuedPushes(d.ctx, managed.TopicIs(deeTopic))
	if err != nil {
		return err
	}
	first, err := d.dee.PushQueued(d.ctx, managed.RefIs("offline-1"))
	if err != nil {
		return err
	}
	d.say("dee", "QueuedPushes: %d waiting for %s; PushQueued(offline-1): %t", len(queued), deeTopic, first)
	return nil
}

func (d *demo) deeOnline() error {
	d.deeRefused.Store(false)
	d.say("dee", "token renewed: the client's next attempt connects, joins and sends the queue")
	sent := func(ref string) func(presence.Event) bool {
		return deeSaw(func(e managed.PushOK) bool { return e.Push.Ref == ref })
	}
	body := func(want string) func(presence.Event) bool {
		return func(ev presence.Event) bool {
			b, ok := ev.(broadcastEvent)
			return ok && b.name == "new_msg" && b.body == want
		}
	}
	return d.until(presenceOf("dee", true), sent("offline-1"), sent("offline-2"),
		body("written offline"), body("also offline, sent second"))
}

// deeNoReply pushes an event the demo server never answers (noreply), with
// a short timeout and a retry on a schedule.
func (d *demo) deeNoReply() error {
	// Never under 2 s, so that at any pace the countdown and the drop come
	// before the retry.
	every := max(d.scaled(3), 2*time.Second)
	p := managed.Push{Topic: deeTopic, Event: "noreply", Ref: "unanswered",
		Timeout: d.scaled(0.5), Retry: managed.Every(every)}
	if err := d.dee.Send(d.ctx, p); err != nil {
		return fmt.Errorf("dee sending: %w", err)
	}
	d.say("dee", "send noreply {} (the server never answers it): timeout %s, retry every %s",
		p.Timeout.Round(time.Millisecond), every.Round(time.Millisecond))
	return d.until(deeSaw(func(e managed.PushTimeout) bool { return e.Push.Ref == "unanswered" }))
}

func (d *demo) deeCountdown() error {
	left, ok, err := d.dee.RetryIn(d.ctx, managed.RefIs("unanswered"))
	if err != nil {
		return err
	}
	if !ok {
		d.say("dee", "RetryIn: noreply is being sent again")
		return nil
	}
	d.say("dee", "RetryIn: noreply is sent again in %.1fs", left.Seconds())
	return nil
}

func (d *demo) deeDrop() error {
	n, err := d.dee.DropPush(d.ctx, managed.RefIs("unanswered"))
	if err != nil {
		return err
	}
	d.say("dee", "DropPush(unanswered): %d dropped", n)
	if err := d.until(deeSaw(func(e managed.PushCancelled) bool { return e.Push.Ref == "unanswered" })); err != nil {
		return err
	}
	waiting, err := d.dee.PushWaiting(d.ctx, managed.TopicIs(deeTopic))
	if err != nil {
		return err
	}
	d.say("dee", "PushWaiting(%s): %t", deeTopic, waiting)
	return nil
}

// observeDee prints one event of dee's client.
func (d *demo) observeDee(ev managed.Event) {
	switch e := ev.(type) {
	case managed.SocketError:
		if d.refusals++; d.refusals == 1 {
			var de *phx.DialError
			if errors.As(e.Err, &de) && de.Status != 0 {
				d.say("dee", "connection refused (HTTP %d); the client tries again by itself", de.Status)
			} else {
				d.say("dee", "connection failed (%v); the client tries again by itself", e.Err)
			}
		}
	case managed.SocketOpened:
		d.say("dee", "socket open, after %d refused attempt%s", d.refusals, plural(d.refusals))
	case managed.ChannelJoined:
		d.say("dee", "joined %s by itself → ok %s", e.Topic, e.Response)
	case managed.PushOK:
		d.pushes++
		d.say("dee", "push %s %s → ok %s (from the queue, in order)", e.Push.Event, demoPayload(e.Push.Payload), e.Response)
	case managed.PushError:
		d.pushes++
		d.say("dee", "push %s %s → error %s", e.Push.Event, demoPayload(e.Push.Payload), e.Response)
	case managed.PushTimeout:
		if e.Retry {
			d.say("dee", "push %s: no reply in time (attempt %d); will retry at %s (in %.1fs)",
				e.Push.Event, e.Attempt, e.RetryAt.Format("15:04:05.0"), time.Until(e.RetryAt).Seconds())
		} else {
			d.say("dee", "push %s: no reply in time (attempt %d); given up", e.Push.Event, e.Attempt)
		}
	case managed.PushCancelled:
		d.say("dee", "push %s cancelled: it will not be sent again", e.Push.Event)
	case managed.PushFailed:
		d.say("dee", "push %s failed: %v", e.Push.Event, e.Err)
	case managed.ChannelJoinError:
		d.say("dee", "join %s refused: %s", e.Topic, e.Response)
	case managed.ChannelErrored:
		d.say("dee", "channel %s errored: %v (it rejoins by itself)", e.Topic, e.Err)
	case managed.Overflowed:
		d.say("dee", "%d events of the client's stream dropped", e.Dropped)
	}
	// Presence and socket closes are already told from your side of the room.
}

func demoPayload(p any) []byte {
	if p == nil {
		return []byte("{}")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return []byte("(not JSON)")
	}
	return b
}
