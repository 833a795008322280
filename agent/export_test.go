package agent

// PullStreamError exposes the progress-stream parser to the fuzz tests.
var PullStreamError = pullStreamError
