/** Area codes used to build fictional US numbers (every one has the 555-0100…0199 range). */
const AREAS = [
  '201', '202', '203', '205', '206', '207', '208', '209', '210', '212', '213', '214', '215', '216', '217', '218',
  '219', '224', '225', '228', '229', '231', '234', '239', '240', '248', '251', '252', '253', '254', '256', '260',
  '262', '267', '269', '270', '276', '281', '301', '302', '303', '304', '305', '307', '308', '309', '310', '312',
];

/** `count` distinct fictional US numbers in E.164 (+1 NXX 555 01XX), at most 4,800. */
export function fictionalNumbers(count: number): string[] {
  if (count > AREAS.length * 100) throw new RangeError(`at most ${AREAS.length * 100} fictional numbers`);
  const numbers: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const area = AREAS[Math.floor(i / 100)];
    numbers.push(`+1${area}55501${String(i % 100).padStart(2, '0')}`);
  }
  return numbers;
}
