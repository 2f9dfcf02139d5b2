package coordinator

import (
	"math"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/internal/wire"
)

// Result is the job as CONTRACT.md's JSON describes it, as of now. Call it
// under the state machine's lock (View); the result shares nothing mutable
// with the state.
func (j *Job) Result(now time.Time) job.Result {
	s := j.Spec
	r := job.Result{
		JobID: j.ID, State: j.State, Error: j.Error, ErrorKind: j.Kind,
		Rank: s.Rank, Lambda: s.Lambda, Iterations: s.Iterations, Implicit: s.Implicit, Solver: string(s.ALS(0).SolverUsed()),
		Biases: s.Biases, NonNegative: s.NonNegative,
		Restarts: j.Restarts, Snapshot: j.Snapshot, SnapshotID: j.SnapshotID, BytesExchanged: j.Bytes,
		ResumedFrom: append([]int(nil), j.ResumedFrom...),
		// Copies: the state machine goes on appending and filling in.
		History: append([]job.Iteration{}, j.History...),
		Notes:   append([]string(nil), j.Notes...),
	}
	if s.Implicit {
		a := s.Alpha
		r.Alpha = &a
	}
	end := j.Finished
	if end.IsZero() {
		end = now
	}
	r.Seconds = end.Sub(j.Created).Seconds()
	if p := j.Partition; p != nil {
		r.Users, r.Items = p.Users, p.Items
		r.UserBlocks, r.ItemBlocks = p.UserBlocks, p.ItemBlocks
		r.TrainRatings, r.TestRatings, r.TestSkipped = p.TrainRatings, p.TestRatings, p.TestSkipped
		r.SkippedLines, r.Duplicates = p.SkippedLines, p.Duplicates
		if s.Biases {
			mean := p.Mean
			r.GlobalMean = &mean
		}
		r.LoadSeconds = p.Seconds + j.LoadSeconds
		if j.Assign != nil {
			r.Workers = len(distinct(j.Assign.Users, j.Assign.Items))
			r.BytesLowerBound = int64(len(j.History)) * j.Assign.LowerBound
		}
	}
	if n := len(j.History); n > 0 {
		var sum float64
		for _, it := range j.History {
			sum += it.Seconds
		}
		r.SecondsPerIteration = sum / float64(n)
		r.TrainRMSE = j.History[n-1].TrainRMSE
		r.TestRMSE = j.History[n-1].TestRMSE
	}
	if e := j.Eval; e != nil {
		if s.Implicit {
			if e.RankUsers > 0 {
				p, nd := e.PrecisionSum/float64(e.RankUsers), e.NDCGSum/float64(e.RankUsers)
				r.PrecisionAt10, r.NDCGAt10 = &p, &nd
			}
		} else if e.TestN > 0 {
			rmse, mae := math.Sqrt(e.TestSSE/float64(e.TestN)), e.TestAE/float64(e.TestN)
			r.TestRMSE, r.TestMAE = &rmse, &mae
		}
	}
	if c, ok := j.GoodCheckpoint(); ok {
		r.Checkpoint = &c
	}
	if j.State == job.StateRunning || j.State == job.StatePending {
		r.Progress = j.progress()
		r.Progress.ElapsedSeconds = r.Seconds
		if t := j.Spec.Iterations; t > 0 {
			done := float64(j.DoneIteration)
			if j.DoneSide == wire.SideUsers {
				done -= 0.5 // DoneIteration names the iteration whose users phase is done
			}
			r.Progress.Done = min(max(done/float64(t), 0), 1)
			if n := len(j.History); n > 0 {
				left := max(float64(t)-done, 0) * r.SecondsPerIteration
				r.Progress.RemainingSeconds = &left
			}
		}
	}
	return r
}

func (j *Job) progress() *job.Progress {
	switch {
	case j.State == job.StatePending || j.Partition == nil:
		return &job.Progress{Phase: "partition"}
	case j.Assign == nil:
		return &job.Progress{Phase: "assign"}
	case j.LoadedEpoch != j.Assign.Epoch:
		return &job.Progress{Phase: "load"}
	}
	if t, ok := j.CheckpointDue(); ok {
		return &job.Progress{Iteration: t, Phase: "checkpoint"}
	}
	if t, side, ok := j.NextPhase(); ok {
		return &job.Progress{Iteration: t, Phase: side.String()}
	}
	if j.Eval == nil {
		return &job.Progress{Iteration: j.Spec.Iterations, Phase: "evaluate"}
	}
	return &job.Progress{Iteration: j.Spec.Iterations, Phase: "snapshot"}
}
