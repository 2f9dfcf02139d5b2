package cli

import (
	"errors"
	"net/http"
	"testing"

	"github.com/cofactor-ml/cofactor/coordinator"
)

// TestAPIErrExitCodes: the API's refusals map to the exit codes of
// docs/api.md — bad requests exit 2, refused tokens 1 like any runtime
// failure, whichever command met them.
func TestAPIErrExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&coordinator.APIError{Status: http.StatusBadRequest, Message: "bad spec"}, ExitUsage},
		{&coordinator.APIError{Status: http.StatusNotFound, Message: "no such job"}, ExitUsage},
		{&coordinator.APIError{Status: http.StatusConflict, Message: "finished"}, ExitUsage},
		{&coordinator.APIError{Status: http.StatusUnauthorized, Message: "needs a read token"}, ExitFailure},
		{&coordinator.APIError{Status: http.StatusForbidden, Message: "needs the admin role"}, ExitFailure},
		{&coordinator.APIError{Status: http.StatusInternalServerError, Message: "boom"}, ExitFailure},
		{errors.New("no coordinator answered"), ExitFailure},
	} {
		if got := exitCode(apiErr(tc.err)); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}
}
