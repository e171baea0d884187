package shadow

// RoleHeader tells each upstream the part it plays: reference, candidate,
// secondary (a second reference) or upstream (not under test).
const RoleHeader = "X-Shadow-Test-Role"
