package phxtest

import "context"

// WaitConn waits until at least n connections are open and returns the
// newest, or ctx's error.
func (s *Server) WaitConn(ctx context.Context, n int) (*Conn, error) {
	var c *Conn
	err := s.wait(ctx, func() bool {
		cs := s.Conns()
		if len(cs) >= n && len(cs) > 0 {
			c = cs[len(cs)-1]
			return true
		}
		return false
	})
	return c, err
}

// WaitJoined waits until some open connection has a channel joined on
// topic (its ok reply queued for writing) and returns the newest such
// connection: a client that reconnected may still be open on an older one
// as far as the server knows.
func (s *Server) WaitJoined(ctx context.Context, topic string) (*Conn, error) {
	var c *Conn
	err := s.wait(ctx, func() bool {
		cs := s.Conns()
		for i := len(cs) - 1; i >= 0; i-- {
			if cs[i].IsJoined(topic) {
				c = cs[i]
				return true
			}
		}
		return false
	})
	return c, err
}

// WaitActive waits until exactly n connections are open.
func (s *Server) WaitActive(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return s.Stats().Active == n })
}

// Wait waits until cond returns true, or ctx ends. cond is evaluated now
// and again after every connection, disconnection, join, leave, received
// frame and reader pause; it must not block.
func (s *Server) Wait(ctx context.Context, cond func() bool) error { return s.wait(ctx, cond) }

func (s *Server) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrServerClosed
		}
	}
}

func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}
