// The dashboard page (issue 7).
export {};
