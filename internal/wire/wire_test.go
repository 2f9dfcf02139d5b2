package wire

import (
	"errors"
	"testing"

	"github.com/cofactor-ml/cofactor/internal/job"
)

func TestCheckBounds(t *testing.T) {
	many := make([]string, job.MaxBlocks+1)
	for _, tc := range []struct {
		name string
		c    Command
		ok   bool
	}{
		{"a phase", Command{Type: CmdPhase, Users: []string{"a"}, Items: []string{"a"}, Iteration: 3}, true},
		{"a partition", Command{Type: CmdPartition, UserBlocks: job.MaxBlocks, ItemBlocks: 1}, true},
		{"too many user blocks", Command{Type: CmdPartition, UserBlocks: job.MaxBlocks + 1, ItemBlocks: 1}, false},
		{"negative item blocks", Command{Type: CmdPartition, UserBlocks: 1, ItemBlocks: -1}, false},
		{"a huge assignment", Command{Type: CmdPhase, Users: many, Items: []string{"a"}}, false},
		{"a negative iteration", Command{Type: CmdPhase, Users: []string{"a"}, Items: []string{"a"}, Iteration: -1}, false},
		{"an iteration past the limit", Command{Type: CmdPhase, Users: []string{"a"}, Items: []string{"a"}, Iteration: job.MaxIterations + 1}, false},
	} {
		err := tc.c.CheckBounds()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBounds)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
