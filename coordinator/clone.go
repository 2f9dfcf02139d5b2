package coordinator

import (
	"maps"
	"slices"
)

// clone returns a copy of st that shares nothing Apply changes: jobs,
// workers and schedules are changed in place, so each is copied with the
// slices Apply appends to or rewrites. Values Apply only replaces whole
// (a job's Spec, Partition, Assign, UsersPhase, Eval; history entries'
// RMSE pointers) are shared.
func (st *State) clone() *State {
	out := &State{
		Jobs:      make(map[string]*Job, len(st.Jobs)),
		Order:     slices.Clone(st.Order),
		Workers:   make(map[string]*WorkerInfo, len(st.Workers)),
		Servers:   make(map[string]*ServerInfo, len(st.Servers)),
		Schedules: make(map[string]*Schedule, len(st.Schedules)),
	}
	for id, j := range st.Jobs {
		out.Jobs[id] = j.clone()
	}
	for id, w := range st.Workers {
		cp := *w
		out.Workers[id] = &cp
	}
	for id, s := range st.Servers {
		cp := *s
		out.Servers[id] = &cp
	}
	for id, s := range st.Schedules {
		cp := *s
		out.Schedules[id] = &cp
	}
	return out
}

// clone copies a job as State.clone needs.
func (j *Job) clone() *Job {
	cp := *j
	cp.History = slices.Clone(j.History)
	cp.Notes = slices.Clone(j.Notes)
	cp.Checkpoints = slices.Clone(j.Checkpoints)
	cp.ResumedFrom = slices.Clone(j.ResumedFrom)
	cp.Events = slices.Clone(j.Events)
	cp.ManifestRefs = maps.Clone(j.ManifestRefs)
	cp.Manifests = maps.Clone(j.Manifests)
	return &cp
}
