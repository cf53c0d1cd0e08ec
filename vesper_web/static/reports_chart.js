// The Reports page's chart (§13): the fleet's availability per day as inline SVG built with DOM APIs, one bar
// per day (data-day), its height the day's availability above a floor that shows the differences that matter
// (99 % and 99.9 % look alike on a scale from 0); a day with nothing counted is a short grey mark.
import { percent, ratioHealth, svg, svgTitle } from "./history_view.js";

const WIDTH = 1000;
const HEIGHT = 200;
const GAP = 0.2; // of a day's width

// The chart's floor: 90 % unless a day fell below it, then the tenth below the lowest day.
export function floorOf(ratios) {
  const known = ratios.filter((r) => r !== null && r !== undefined);
  const lowest = known.length ? Math.min(...known) : 1;
  return lowest >= 0.9 ? 0.9 : Math.max(0, Math.floor(lowest * 10) / 10);
}

function bar(row, x, width, floor) {
  const ratio = row.availability;
  const known = ratio !== null && ratio !== undefined;
  const height = known ? Math.max(2, ((ratio - floor) / (1 - floor)) * HEIGHT) : 4;
  const title = known
    ? `${row.group}: ${percent(ratio)} of ${row.devices} devices, ${row.under_99} under 99 %, ${row.outages} outages`
    : `${row.group}: nothing counted`;
  return svg("rect", {
    class: `day-bar ${known ? `ratio-${ratioHealth(ratio)}` : "ratio-unknown"}`,
    x: x.toFixed(2), y: (HEIGHT - height).toFixed(2), width: width.toFixed(2), height: height.toFixed(2),
    "data-day": row.group, "data-availability": known ? ratio : "",
  }, svgTitle(title));
}

// Draw the days' rows (group "YYYY-MM-DD", oldest first); returns the floor used.
export function drawDays(node, rows) {
  const days = [...rows].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  const floor = floorOf(days.map((row) => row.availability));
  const step = WIDTH / Math.max(1, days.length);
  const lines = [0.99, 0.999].filter((r) => r > floor).map((r) => {
    const y = (HEIGHT - ((r - floor) / (1 - floor)) * HEIGHT).toFixed(2);
    return svg("line", { class: "day-line", x1: 0, x2: WIDTH, y1: y, y2: y }, svgTitle(percent(r)));
  });
  node.replaceChildren(
    svg("rect", { class: "chart-bg", x: 0, y: 0, width: WIDTH, height: HEIGHT }),
    ...days.map((row, i) => bar(row, i * step + (step * GAP) / 2, step * (1 - GAP), floor)),
    ...lines,
  );
  node.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  node.setAttribute("preserveAspectRatio", "none");
  return floor;
}
