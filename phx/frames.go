package phx

import (
	"context"

	"github.com/phxgo/phxgo/wire"
)

// onFrame is called by a connection's reader for every frame it reads and
// by its writer for every frame it wrote: it counts the frame, hands it to
// the frame taps and logs it at Debug. With no tap and Debug off it costs
// two atomic additions and the logger's level check.
func (s *Socket) onFrame(ctx context.Context, dir Direction, op wire.Opcode, data []byte) {
	if s.debugOn(ctx) {
		s.logFrame(ctx, dir, op, data)
	}
}
