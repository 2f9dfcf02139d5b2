package checkpoint_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	"github.com/cofactor-ml/cofactor/checkpoint"
)

// A serving layer opens the store that training writes to, follows the
// model's "latest" pointer, opens that snapshot (every file is checked)
// and scores items for a user: the dot product of the two factor rows.
// testdata/store holds one small snapshot of the model "default".
func Example() {
	ctx := context.Background()
	repo, err := checkpoint.OpenURI(ctx, "dir:testdata/store", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()

	id, err := repo.Latest(ctx, "default")
	if err != nil {
		log.Fatal(err)
	}
	model, err := repo.Open(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("snapshot %s: %d users, %d items, rank %d\n", id, len(model.UserIDs), len(model.ItemIDs), model.Rank)

	u, ok := model.User("alice")
	if !ok {
		log.Fatal("no such user")
	}
	score := func(i int32) float32 {
		var s float32
		for k, x := range model.UserRow(u) {
			s += x * model.ItemRow(i)[k]
		}
		return s
	}
	matrix, _ := model.Item("matrix")
	fmt.Printf("alice, matrix: %.2f\n", score(matrix))

	// Recommend the best item alice did not train on.
	best, bestScore := int32(-1), float32(0)
	for i := range int32(len(model.ItemIDs)) {
		if !slices.Contains(model.Seen(u), i) && (best < 0 || score(i) > bestScore) {
			best, bestScore = i, score(i)
		}
	}
	fmt.Printf("alice, best unseen: %s (%.2f)\n", model.ItemIDs[best], bestScore)
	// Output:
	// snapshot job-20240601-it0010: 2 users, 3 items, rank 2
	// alice, matrix: 5.00
	// alice, best unseen: amelie (2.00)
}
