package managed

import (
	"context"
	"slices"
	"time"
)

// Pushes lists the pushes m matches that are waiting (queued, in flight or
// timed out), topic by topic, then the timed-out ones by retry time.
func (c *Client) Pushes(ctx context.Context, m Match) ([]PushInfo, error) {
	return ask(ctx, c, func(l *loop) []PushInfo {
		var out []PushInfo
		l.each(func(p *pushRec) {
			if m == nil || m(p.cfg) {
				out = append(out, p.info())
			}
		})
		return out
	})
}

func (c *Client) inState(ctx context.Context, m Match, states ...PushState) ([]PushInfo, error) {
	all, err := c.Pushes(ctx, m)
	out := all[:0]
	for _, p := range all {
		for _, s := range states {
			if p.State == s {
				out = append(out, p)
			}
		}
	}
	return out, err
}

func (c *Client) anyIn(ctx context.Context, m Match, states ...PushState) (bool, error) {
	ps, err := c.inState(ctx, m, states...)
	return len(ps) > 0, err
}

// QueuedPushes lists the queued pushes m matches (waiting for their channel).
func (c *Client) QueuedPushes(ctx context.Context, m Match) ([]Push, error) {
	ps, err := c.inState(ctx, m, Queued)
	out := make([]Push, len(ps))
	for i, p := range ps {
		out[i] = p.Push
	}
	return out, err
}

// AllQueuedPushes maps each topic to its queued pushes, in order.
func (c *Client) AllQueuedPushes(ctx context.Context) (map[string][]Push, error) {
	ps, err := c.QueuedPushes(ctx, nil)
	out := map[string][]Push{}
	for _, p := range ps {
		out[p.Topic] = append(out[p.Topic], p)
	}
	return out, err
}

// PushQueued reports whether a push m matches is queued.
func (c *Client) PushQueued(ctx context.Context, m Match) (bool, error) {
	return c.anyIn(ctx, m, Queued)
}

// PushInFlight reports whether a push m matches was sent and has no reply yet.
func (c *Client) PushInFlight(ctx context.Context, m Match) (bool, error) {
	return c.anyIn(ctx, m, InFlight)
}

// PushWaiting reports whether a push m matches is queued, in flight, or
// timed out and due for a retry.
func (c *Client) PushWaiting(ctx context.Context, m Match) (bool, error) {
	return c.anyIn(ctx, m, Queued, InFlight, TimedOut)
}

// TimedOutPushes lists the timed-out pushes m matches, by retry time.
func (c *Client) TimedOutPushes(ctx context.Context, m Match) ([]PushInfo, error) {
	return c.inState(ctx, m, TimedOut)
}

// PushTimedOut reports whether a push m matches timed out and waits for a retry.
func (c *Client) PushTimedOut(ctx context.Context, m Match) (bool, error) {
	return c.anyIn(ctx, m, TimedOut)
}

// RetryIn is the time until the first timed-out push m matches is sent
// again (a countdown for a UI); false when none waits for a retry.
func (c *Client) RetryIn(ctx context.Context, m Match) (time.Duration, bool, error) {
	ps, err := c.TimedOutPushes(ctx, m)
	if err != nil || len(ps) == 0 {
		return 0, false, err
	}
	return max(0, time.Until(ps[0].RetryAt)), true, nil
}

func (c *Client) drop(ctx context.Context, m Match, states ...PushState) (int, error) {
	return ask(ctx, c, func(l *loop) int {
		var hit []*pushRec
		l.each(func(p *pushRec) {
			if (m == nil || m(p.cfg)) && slices.Contains(states, p.state) {
				hit = append(hit, p)
			}
		})
		n := 0
		for _, p := range hit {
			if l.cancelPush(p) {
				n++
			}
		}
		return n
	})
}

// DropQueuedPush drops the queued pushes m matches; they are never sent.
// It returns how many it dropped.
func (c *Client) DropQueuedPush(ctx context.Context, m Match) (int, error) {
	return c.drop(ctx, m, Queued)
}

// DropTimedOutPush drops the timed-out pushes m matches before their retry.
func (c *Client) DropTimedOutPush(ctx context.Context, m Match) (int, error) {
	return c.drop(ctx, m, TimedOut)
}

// DropPush drops the pushes m matches wherever they are: queued ones are
// never sent, timed-out ones never retried, and one in flight is withdrawn
// (never sent if phx still holds it) and its reply ignored.
func (c *Client) DropPush(ctx context.Context, m Match) (int, error) {
	return c.drop(ctx, m, Queued, InFlight, TimedOut)
}
