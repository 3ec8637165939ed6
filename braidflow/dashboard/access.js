// Whether the signed-in principal may do what a role may, on an object of a department:
// the dashboard's copy of braidflow/access.py `Principal.may`, so it never shows a button
// that would answer 403. The API decides in the end; this only hides.
const RANKS = { viewer: 0, operator: 1, editor: 2, owner: 3 };

export function roleIn(me, department) {
  let best = null;
  for (const { role, department: where } of me.roles) {
    if (where !== null && where !== department) continue;
    if (best === null || RANKS[role] > RANKS[best]) best = role;
  }
  return best;
}

export function may(me, needed, department = null) {
  const held = roleIn(me, department ?? null);
  return held !== null && RANKS[held] >= RANKS[needed];
}

// Whether the principal holds `needed` (or a higher role) anywhere: in the tenant or a department.
export function mayAnywhere(me, needed) {
  return me.roles.some(({ role }) => RANKS[role] >= RANKS[needed]);
}
