package app

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/serve"
)

// explainUser prints recommend --explain: the user's items with their
// contributions and remainders (serve.Explain).
func (o *recommendOptions) explainUser(s streams, m *checkpoint.Model, u int32, id string) error {
	ex, err := serve.Explain(m, u, o.k, o.explainTop, serve.Filter{ExcludeSeen: o.excludeSeen})
	if errors.Is(err, serve.ErrNoRatings) {
		return cli.Usagef("--explain: snapshot %s holds no training ratings (it is not a job's final snapshot, or predates them)", id)
	}
	if err != nil {
		return err
	}
	items := make([]serve.ScoredItem, len(ex))
	for j, e := range ex {
		rem := e.Remainder
		items[j] = serve.ScoredItem{Item: m.ItemIDs[e.Item], Score: e.Score, Remainder: &rem, Contributions: []serve.ContributionItem{}}
		for _, c := range e.Contributions {
			items[j].Contributions = append(items[j].Contributions, serve.ContributionItem{Item: m.ItemIDs[c.Item], Contribution: c.Contribution})
		}
	}
	if o.json {
		return cli.WriteJSON(s.out, struct {
			User  string             `json:"user"`
			Items []serve.ScoredItem `json:"items"`
		}{o.user, items})
	}
	fmt.Fprintf(s.out, "top %d items for user %s, explained (snapshot %s):\n", len(items), o.user, id)
	for j, it := range items {
		fmt.Fprintf(s.out, "%4d  %-20s %.4f\n", j+1, it.Item, it.Score)
		for _, c := range it.Contributions {
			fmt.Fprintf(s.out, "        because of %-20s %+.4f\n", c.Item, c.Contribution)
		}
		fmt.Fprintf(s.out, "        everything else           %+.4f\n", *it.Remainder)
	}
	return nil
}

// similarUsersOptions are the flags of `similar-users`.
type similarUsersOptions struct {
	snap snapshotOptions
	user string
	k    int
	json bool
}

func newSimilarUsersCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &similarUsersOptions{}
	cmd := &cobra.Command{
		Use:   "similar-users (--store URI[@ID] | --snapshot DIR) --user U [--k 10]",
		Short: "Print the users most similar to a user",
		Long: `similar-users ranks users by the cosine similarity of their factor rows to the
given user's (factors only: a model's bias columns are left out), highest
first, leaving the user out.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.user == "":
				return cli.Usagef("no user: pass --user ID")
			case o.k < 1:
				return cli.Usagef("--k %d must be ≥ 1", o.k)
			}
			m, id, err := o.snap.open(cmd.Context(), cmd, ops)
			if err != nil {
				return err
			}
			u, ok := m.User(o.user)
			if !ok {
				return cli.Usagef("user %q is not in the snapshot", o.user)
			}
			sims := serve.SimilarUsers(m, u, o.k)
			users := make([]serve.ScoredUser, len(sims))
			for j, e := range sims {
				users[j] = serve.ScoredUser{User: m.UserIDs[e.Item], Score: e.Score}
			}
			if o.json {
				return cli.WriteJSON(s.out, struct {
					User  string             `json:"user"`
					Users []serve.ScoredUser `json:"users"`
				}{o.user, users})
			}
			fmt.Fprintf(s.out, "%d users most similar to %s (snapshot %s):\n", len(users), o.user, id)
			for j, e := range users {
				fmt.Fprintf(s.out, "%4d  %-20s %.4f\n", j+1, e.User, e.Score)
			}
			return nil
		},
	}
	o.snap.addFlags(cmd, snapshotFlagHelp, &ops.nats, true)
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "user ID")
	f.IntVar(&o.k, "k", 10, "number of users")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	return cmd
}
