// The phone page (issue 7).
export {};
