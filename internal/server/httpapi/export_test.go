package httpapi

// StatusOf is the HTTP status err is answered with.
func StatusOf(err error) int {
	status, _ := apiError(err)
	return status
}
