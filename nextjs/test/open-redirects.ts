// The reviewer's open redirects (issue 8, defect 3): each passed the check on
// the input, but its normalised path began with "//".
export const REVIEWED = ["/..//evil.example/phish", "/.//evil.example/phish", "/%2e%2e//evil.example/phish"];
