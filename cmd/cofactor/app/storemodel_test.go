package app

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestStoreModel: a nats:// store URI's path names the model, unless
// --model names another.
func TestStoreModel(t *testing.T) {
	tests := []struct {
		store string
		args  []string
		want  string
		bad   bool
	}{
		{"nats://127.0.0.1:4222/movies", nil, "movies", false},
		{"nats://127.0.0.1:4222/movies", []string{"--model", "movies"}, "movies", false},
		{"nats://127.0.0.1:4222/movies", []string{"--model", "books"}, "", true},
		{"nats://127.0.0.1:4222", []string{"--model", "books"}, "books", false},
		{"dir:/x", nil, "default", false},
	}
	for _, tt := range tests {
		o := &snapshotOptions{}
		cmd := &cobra.Command{Use: "x"}
		o.addFlags(cmd, "")
		if err := cmd.ParseFlags(append([]string{"--store", tt.store}, tt.args...)); err != nil {
			t.Fatal(err)
		}
		err := o.storeModel(cmd)
		switch {
		case tt.bad && err == nil:
			t.Errorf("%s %v: accepted", tt.store, tt.args)
		case !tt.bad && err != nil:
			t.Errorf("%s %v: %v", tt.store, tt.args, err)
		case !tt.bad && o.model != tt.want:
			t.Errorf("%s %v: model %q, want %q", tt.store, tt.args, o.model, tt.want)
		}
	}
}
