//! A heavy simulation for many workers: Conway's Game of Life on a grid of `width × height`
//! cells (131 072 at the default 512 × 256), cut into horizontal bands, the regions.
//!
//! The state is double-buffered in two partitioned tables, `even` and `odd`, one row per grid
//! line, partitioned by region. A tick is one `step_even(region)` per region (reading `even`,
//! writing `odd`), then the next is one `step_odd(region)` per region (the other way round).
//! A step reads its own region and the line on each side of it, which lie in the two
//! neighbouring regions (`reads(even[region - 1 ..= region + 1])`: a row reached by its key
//! must be in a declared partition), and writes only its own (`writes(odd[region])`), so the
//! steps of one tick never conflict and the node runs them on as many workers as it has, while
//! the next tick's steps wait only for the steps they read. The outcome is the one of running the steps one by one:
//! [`digest`] after N ticks is the same at any worker count.
//!
//! Cells outside the grid are dead: the top and bottom lines have no neighbours beyond them,
//! and lines wrap around left to right.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// One line of the grid in the buffer that even ticks read.
#[table(public, stateful, partition_by = region)]
#[derive(Clone, Debug, PartialEq)]
pub struct Even {
    #[primary_key]
    pub y: u32,
    pub region: u32,
    /// One byte per cell: 1 alive, 0 dead.
    pub cells: Vec<u8>,
}

/// One line of the grid in the buffer that odd ticks read.
#[table(public, stateful, partition_by = region)]
#[derive(Clone, Debug, PartialEq)]
pub struct Odd {
    #[primary_key]
    pub y: u32,
    pub region: u32,
    pub cells: Vec<u8>,
}

/// The world's shape; one row, id `0`, written by [`seed`].
#[table(public)]
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    #[primary_key]
    pub id: u32,
    pub width: u32,
    pub height: u32,
    pub regions: u32,
}

/// What [`stats`] reports of one buffer.
#[interstice_type]
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub width: u32,
    pub height: u32,
    pub regions: u32,
    pub cells: u64,
    pub alive: u64,
}

/// The longest side accepted: 4096 cells wide, 4096 lines (16 M cells).
const MAX_SIDE: u32 = 4096;

/// A new world of `width × height` cells in `regions` bands, about a third alive, placed by
/// `seed` alone (the same seed, the same world), in both buffers.
#[reducer(writes(even, odd, world))]
fn seed(
    ctx: ReducerContext,
    width: u32,
    height: u32,
    regions: u32,
    seed: u64,
) -> Result<(), String> {
    if !(3..=MAX_SIDE).contains(&width) || !(3..=MAX_SIDE).contains(&height) {
        return Err(format!(
            "width and height must be 3 to {MAX_SIDE} (got {width} × {height})"
        ));
    }
    if regions == 0 || regions > height {
        return Err(format!(
            "regions must be 1 to the height, {height} (got {regions})"
        ));
    }
    let t = &ctx.current.tables;
    t.even().clear()?;
    t.odd().clear()?;
    t.world().clear()?;
    t.world().insert(World {
        id: 0,
        width,
        height,
        regions,
    })?;
    for (y, cells) in (0..height).zip(initial_world(width, height, seed)) {
        let region = region_of(y, height, regions);
        t.even().insert(Even {
            y,
            region,
            cells: cells.clone(),
        })?;
        t.odd().insert(Odd { y, region, cells })?;
    }
    Ok(())
}

/// The two halves of a tick: `$step(region)` reads `$front` around the region and writes its
/// lines of `$back`. One row and one scratch line are reused for every line written, so a step
/// allocates for the lines it reads and nothing per line it computes.
macro_rules! step {
    ($(#[$doc:meta])* $step:ident: $front:ident -> $back:ident $Back:ident) => {
        $(#[$doc])*
        #[reducer(reads(world, $front[region - 1 ..= region + 1]), writes($back[region]))]
        fn $step(ctx: ReducerContext, region: u32) -> Result<(), String> {
            let t = &ctx.current.tables;
            let world = world(&t.world().get(0)?)?;
            let band = read_band(
                region,
                &world,
                |r| {
                    Ok(t.$front()
                        .find_by_region(r)?
                        .into_iter()
                        .map(|l| (l.y, l.cells))
                        .collect())
                },
                |y| Ok(t.$front().get(y)?.map(|l| l.cells)),
            )?;
            let mut row = $Back {
                y: 0,
                region,
                cells: Vec::new(),
            };
            let mut columns = Vec::new();
            for y in band.lines_in(region, &world) {
                band.next_line_into(y, &mut columns, &mut row.cells);
                row.y = y;
                t.$back().update(&row)?;
            }
            Ok(())
        }
    };
}

step!(
    /// An even tick's step of `region`: reads `even` around it, writes its lines of `odd`.
    step_even: even -> odd Odd
);
step!(
    /// An odd tick's step of `region`: reads `odd` around it, writes its lines of `even`.
    step_odd: odd -> even Even
);

/// Cells and live cells of one buffer (`odd`: the buffer odd ticks read, which even ticks
/// write).
#[query(reads(world, even, odd))]
fn stats(ctx: QueryContext, odd: bool) -> Result<Stats, String> {
    let world = world(&ctx.current.tables.world().get(0)?)?;
    let mut alive = 0u64;
    for_each_line(&ctx, odd, |_, cells| {
        alive += cells.iter().map(|&c| u64::from(c)).sum::<u64>();
    });
    Ok(Stats {
        width: world.width,
        height: world.height,
        regions: world.regions,
        cells: u64::from(world.width) * u64::from(world.height),
        alive,
    })
}

/// A digest (FNV-1a, 64 bits) of one buffer, line by line in order: equal digests, equal
/// worlds.
#[query(reads(even, odd))]
fn digest(ctx: QueryContext, odd: bool) -> u64 {
    let mut digest = Digest::new();
    for_each_line(&ctx, odd, |y, cells| digest.line(y, cells));
    digest.0
}

/// The digest the world would have after `ticks` more ticks from the buffer `odd` says,
/// computed inside this one query and written nowhere: a look ahead that leaves the state as
/// it is. It runs [`tick_native`], the plain-Rust tick, in wasm, which makes it also the
/// measure of the rule itself in wasm against the same code compiled natively (`interstice
/// bench`). The call's fuel bounds `ticks`: 600 run at the default size, 1 000 do not.
#[query(reads(even, odd))]
fn forecast(ctx: QueryContext, odd: bool, ticks: u32) -> u64 {
    let mut numbers = Vec::new();
    let mut lines = Vec::new();
    for_each_line(&ctx, odd, |y, cells| {
        numbers.push(y);
        lines.push(cells.to_vec());
    });
    for _ in 0..ticks {
        lines = tick_native(&lines);
    }
    let mut digest = Digest::new();
    for (y, cells) in numbers.into_iter().zip(&lines) {
        digest.line(y, cells);
    }
    digest.0
}

/// FNV-1a over each line's number and cells, in line order.
pub struct Digest(pub u64);

impl Digest {
    pub fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    pub fn line(&mut self, y: u32, cells: &[u8]) {
        for byte in y.to_le_bytes().iter().chain(cells) {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}

/// The lines [`seed`] makes: about a third of the cells alive, placed by `seed` alone.
pub fn initial_world(width: u32, height: u32, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..height)
        .map(|_| {
            (0..width)
                .map(|_| u8::from(next_random(&mut state).is_multiple_of(3)))
                .collect()
        })
        .collect()
}

/// One tick of the whole world in plain Rust, line by line: what the steps compute, for
/// checking them and as the native baseline of the benchmark.
pub fn tick_native(lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let dead = vec![0u8; lines.first().map_or(0, Vec::len)];
    let mut columns = Vec::new();
    (0..lines.len())
        .map(|y| {
            let above = if y == 0 { &dead } else { &lines[y - 1] };
            let below = lines.get(y + 1).unwrap_or(&dead);
            let mut next = Vec::new();
            next_line_into(above, &lines[y], below, &mut columns, &mut next);
            next
        })
        .collect()
}

fn for_each_line(ctx: &QueryContext, odd: bool, mut f: impl FnMut(u32, &[u8])) {
    if odd {
        for line in ctx.current.tables.odd().scan() {
            f(line.y, &line.cells);
        }
    } else {
        for line in ctx.current.tables.even().scan() {
            f(line.y, &line.cells);
        }
    }
}

fn world(row: &Option<World>) -> Result<World, String> {
    row.clone()
        .ok_or_else(|| "no world yet: call `seed` first".to_owned())
}

/// The region of line `y`: `regions` bands of nearly equal height.
pub fn region_of(y: u32, height: u32, regions: u32) -> u32 {
    (u64::from(y) * u64::from(regions) / u64::from(height)) as u32
}

/// The lines of `region` (through `lines_of(region)`) and the line on each side of it, in the
/// neighbouring regions (through `line(y)`, by key): all that its step reads. Only those two
/// lines of the neighbours are read, not their whole regions.
fn read_band(
    region: u32,
    world: &World,
    lines_of: impl FnOnce(u32) -> Result<Vec<(u32, Vec<u8>)>, Error>,
    mut line: impl FnMut(u32) -> Result<Option<Vec<u8>>, Error>,
) -> Result<Band, String> {
    if region >= world.regions {
        return Err(format!(
            "region {region} does not exist: the world has {}",
            world.regions
        ));
    }
    let mut band = Band::new(lines_of(region)?);
    let (Some(first), Some(last)) = (band.first(), band.last()) else {
        return Ok(band);
    };
    let beside = [
        first.checked_sub(1),
        Some(last + 1).filter(|&y| y < world.height),
    ];
    for y in beside.into_iter().flatten() {
        if let Some(cells) = line(y)? {
            band.insert(y, cells);
        }
    }
    Ok(band)
}

/// Lines of the grid by number: what a step reads. A line it does not hold reads as dead.
#[derive(Clone, Debug, Default)]
pub struct Band {
    /// Sorted by line number, one entry per number.
    lines: Vec<(u32, Vec<u8>)>,
    dead: Vec<u8>,
}

impl Band {
    /// The band of these lines, in any order; of two with one number, the first is kept.
    pub fn new(mut lines: Vec<(u32, Vec<u8>)>) -> Band {
        lines.sort_by_key(|(y, _)| *y);
        lines.dedup_by_key(|(y, _)| *y);
        let width = lines.first().map_or(0, |(_, l)| l.len());
        Band {
            lines,
            dead: vec![0; width],
        }
    }

    fn first(&self) -> Option<u32> {
        self.lines.first().map(|(y, _)| *y)
    }

    fn last(&self) -> Option<u32> {
        self.lines.last().map(|(y, _)| *y)
    }

    fn insert(&mut self, y: u32, cells: Vec<u8>) {
        match self.lines.binary_search_by_key(&y, |(y, _)| *y) {
            Ok(at) => self.lines[at].1 = cells,
            Err(at) => self.lines.insert(at, (y, cells)),
        }
    }

    /// Line `y`, or a dead line when the band does not hold it (or it lies off the grid).
    fn line(&self, y: i64) -> &[u8] {
        u32::try_from(y)
            .ok()
            .and_then(|y| self.lines.binary_search_by_key(&y, |(y, _)| *y).ok())
            .map_or(&self.dead[..], |at| &self.lines[at].1[..])
    }

    /// The numbers of the lines held that lie in `region`, in order.
    pub fn lines_in<'a>(&'a self, region: u32, world: &'a World) -> impl Iterator<Item = u32> + 'a {
        self.lines
            .iter()
            .map(|(y, _)| *y)
            .filter(move |&y| region_of(y, world.height, world.regions) == region)
    }

    /// The next state of line `y` into `next`, from the lines around it; `columns` is scratch.
    pub fn next_line_into(&self, y: u32, columns: &mut Vec<u8>, next: &mut Vec<u8>) {
        let y = i64::from(y);
        next_line_into(
            self.line(y - 1),
            self.line(y),
            self.line(y + 1),
            columns,
            next,
        );
    }
}

/// The next state of the lines of `region` that `band` holds, from `band` (those lines and
/// their neighbours').
pub fn step_band(region: u32, world: &World, band: &Band) -> Vec<(u32, Vec<u8>)> {
    let mut columns = Vec::new();
    band.lines_in(region, world)
        .map(|y| {
            let mut next = Vec::new();
            band.next_line_into(y, &mut columns, &mut next);
            (y, next)
        })
        .collect()
}

/// B3/S23 on one line, from the lines above and below; wraps left to right. A line shorter
/// than `here` is dead where it has no cells.
///
/// Written for the compiler, not for brevity: the live cells of each column are summed once
/// (three lines, so at most 3), a cell's neighbours are then its column and the two beside it
/// less itself, and the rule is arithmetic rather than a branch. With no division and no
/// per-cell bounds checks, the loops vectorise, natively and in wasm (simd128).
pub fn next_line(above: &[u8], here: &[u8], below: &[u8]) -> Vec<u8> {
    let mut next = Vec::new();
    next_line_into(above, here, below, &mut Vec::new(), &mut next);
    next
}

/// [`next_line`] into `next` (cleared first), with `columns` as scratch: both keep their
/// capacity, so stepping line after line allocates nothing.
pub fn next_line_into(
    above: &[u8],
    here: &[u8],
    below: &[u8],
    columns: &mut Vec<u8>,
    next: &mut Vec<u8>,
) {
    let width = here.len();
    columns.clear();
    if above.len() == width && below.len() == width {
        columns.extend(
            above
                .iter()
                .zip(here)
                .zip(below)
                .map(|((a, h), b)| a + h + b),
        );
    } else {
        let at = |l: &[u8], x: usize| l.get(x).copied().unwrap_or(0);
        columns.extend((0..width).map(|x| at(above, x) + here[x] + at(below, x)));
    }
    let columns = &columns[..];
    let rule = |left: u8, column: u8, right: u8, cell: u8| {
        let around = left + column + right - cell;
        u8::from(around == 3) | (u8::from(around == 2) & cell)
    };
    next.clear();
    next.reserve(width);
    match width {
        0 => {}
        // One cell is its own neighbour on both sides, as the wrap-around says.
        1 => next.push(rule(columns[0], columns[0], columns[0], here[0])),
        _ => {
            next.push(rule(columns[width - 1], columns[0], columns[1], here[0]));
            // Four slices of one length zipped, rather than `windows(3)`: the compiler then
            // knows every index is in bounds and vectorises the loop in wasm too.
            let inner = width - 2;
            let (left, middle, right) = (&columns[..inner], &columns[1..=inner], &columns[2..]);
            next.extend(
                left.iter()
                    .zip(middle)
                    .zip(right)
                    .zip(&here[1..=inner])
                    .map(|(((&l, &m), &r), &cell)| rule(l, m, r, cell)),
            );
            next.push(rule(
                columns[width - 2],
                columns[width - 1],
                columns[0],
                here[width - 1],
            ));
        }
    }
}

/// xorshift64*: deterministic, and good enough to scatter cells.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blinker_blinks() {
        let line = |cells: &[u8]| cells.to_vec();
        let empty = line(&[0, 0, 0, 0, 0]);
        let bar = line(&[0, 1, 1, 1, 0]);
        // A horizontal bar becomes a vertical one: the middle line keeps its centre...
        assert_eq!(next_line(&empty, &bar, &empty), line(&[0, 0, 1, 0, 0]));
        // ...and the lines above and below gain it.
        assert_eq!(next_line(&empty, &empty, &bar), line(&[0, 0, 1, 0, 0]));
    }

    /// The rule as written in the textbook: count the eight neighbours of each cell.
    fn next_line_by_counting(above: &[u8], here: &[u8], below: &[u8]) -> Vec<u8> {
        let width = here.len();
        let at = |l: &[u8], x: usize| l.get(x).copied().unwrap_or(0);
        (0..width)
            .map(|x| {
                let (left, right) = ((x + width - 1) % width, (x + 1) % width);
                let around = [above, below]
                    .iter()
                    .map(|l| at(l, left) + at(l, x) + at(l, right))
                    .sum::<u8>()
                    + at(here, left)
                    + at(here, right);
                u8::from(matches!((here[x], around), (1, 2) | (_, 3)))
            })
            .collect()
    }

    #[test]
    fn the_fast_rule_is_the_rule() {
        let mut state = 42;
        let mut line = |width: usize| -> Vec<u8> {
            (0..width)
                .map(|_| u8::from(next_random(&mut state).is_multiple_of(3)))
                .collect()
        };
        for width in (0..40).chain([511, 512, 4096]) {
            for _ in 0..20 {
                let (above, here, below) = (line(width), line(width), line(width));
                assert_eq!(
                    next_line(&above, &here, &below),
                    next_line_by_counting(&above, &here, &below),
                    "width {width}"
                );
                // Neighbour lines of another width (a dead line, a short one) read as dead
                // beyond their end.
                let short = line(width / 2);
                assert_eq!(
                    next_line(&short, &here, &[]),
                    next_line_by_counting(&short, &here, &[]),
                    "width {width}, short neighbours"
                );
            }
        }
    }

    #[test]
    fn steps_by_region_compute_the_whole_tick() {
        let world = World {
            id: 0,
            width: 40,
            height: 30,
            regions: 4,
        };
        let lines = initial_world(40, 30, 7);
        // In reverse, as a band may receive them in any order.
        let front = Band::new((0..30).zip(lines.iter().cloned()).rev().collect());
        let by_steps: Vec<Vec<u8>> = (0..4)
            .flat_map(|r| step_band(r, &world, &front))
            .map(|(_, cells)| cells)
            .collect();
        assert_eq!(by_steps, tick_native(&lines));
        assert_ne!(by_steps, lines, "the world changes");
    }

    #[test]
    fn regions_cover_every_line_in_order() {
        let regions: Vec<u32> = (0..10).map(|y| region_of(y, 10, 3)).collect();
        assert_eq!(regions, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    }
}
