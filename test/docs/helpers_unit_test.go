package docs

import (
	"reflect"
	"testing"
)

func TestSplitShell(t *testing.T) {
	script := `# a comment --not-a-flag
FOO=1 bin/cofactor train --input "my file.csv" --rank 8 &   # trailing comment
job=$(bin/cofactor job submit --input "$PWD/r.csv" --out '$PWD/model')
bin/coordinator --id c1 \
    --bootstrap && echo done; kill "$(cat w1.pid)"
kubectl exec coordinator-0 -- cofactor cluster status
kubectl scale statefulset coordinator --replicas 5
docker compose run --rm cli cluster status
exec coordinator --id "$POD_NAME" "$@" ${FLAGS:-}
`
	var got [][]string
	for _, c := range ourCommands(splitShell("s", 1, script)) {
		got = append(got, c.argv)
	}
	want := [][]string{
		{"cofactor", "train", "--input", "my file.csv", "--rank", "8"},
		{"cofactor", "job", "submit", "--input", "$PWD/r.csv", "--out", "$PWD/model"},
		{"coordinator", "--id", "c1", "--bootstrap"},
		{"cofactor", "cluster", "status"},
		{"coordinator", "--id", "$POD_NAME", "$@", "${FLAGS:-}"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands\n got %q\nwant %q", got, want)
	}
	cmds := splitShell("s", 1, script)
	if cmds[0].where != "s:2" {
		t.Errorf("first command at %s, want s:2", cmds[0].where)
	}
}
