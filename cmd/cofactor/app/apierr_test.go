package app

import (
	"errors"
	"net/http"
	"testing"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
)

// TestAPIErrExitCodes: the API's refusals map to the exit codes of
// docs/api.md — bad requests exit 2, refused tokens 1 like any runtime
// failure, whichever command met them.
func TestAPIErrExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&coordinator.APIError{Status: http.StatusBadRequest, Message: "bad spec"}, cli.ExitUsage},
		{&coordinator.APIError{Status: http.StatusNotFound, Message: "no such job"}, cli.ExitUsage},
		{&coordinator.APIError{Status: http.StatusConflict, Message: "finished"}, cli.ExitUsage},
		{&coordinator.APIError{Status: http.StatusUnauthorized, Message: "needs a read token"}, cli.ExitFailure},
		{&coordinator.APIError{Status: http.StatusForbidden, Message: "needs the admin role"}, cli.ExitFailure},
		{&coordinator.APIError{Status: http.StatusInternalServerError, Message: "boom"}, cli.ExitFailure},
		{errors.New("no coordinator answered"), cli.ExitFailure},
	} {
		if got := cli.ExitCode(apiErr(tc.err)); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}
}
