"""SBML import: benchmark models and feature models against libroadrunner, and bad inputs."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import libsbml
import numpy as np
import pytest

import scalebridge as sb
from conftest import peer
from scalebridge.errors import SBMLError
from scalebridge.model.sbml import load_sbml
from scalebridge.solvers import Rodas5

DATA = Path(__file__).parent / "data"
RTOL, ATOL = 1e-12, 1e-14


def roadrunner_run(text, selections, t_end, n, rtol=RTOL, atol=ATOL):
    """libroadrunner (CVODE) time course of ``selections`` on ``linspace(0, t_end, n)``."""
    roadrunner = peer("roadrunner", "libroadrunner")
    rr = roadrunner.RoadRunner(text)
    rr.integrator.relative_tolerance = rtol
    rr.integrator.absolute_tolerance = atol
    rr.integrator.setValue("maximum_num_steps", 1_000_000)
    rr.timeCourseSelections = ["time", *selections]
    return np.asarray(rr.simulate(0.0, t_end, n))[:, 1:]


def relative_deviation(ours, ref):
    """Max |ours - ref| per column, relative to the column's largest |ref|."""
    scale = np.maximum(np.max(np.abs(ref), axis=0), 1e-300)
    return np.max(np.abs(np.asarray(ours) - ref), axis=0) / scale


# ----- benchmark models: end of the measurement time span (PEtab measurement tables) -----
# Reference: libroadrunner 2.10 (CVODE, BDF), both tools at rtol 1e-12. The bound per model is
# what the two achieve together, measured (max over states and times of the deviation
# relative to the state's largest value), with about a tenfold margin:
#   Boehm 1.1e-10, Bertozzi 1.7e-11.
# Crauste amplifies integration errors: CVODE at rtol 1e-12 is 2.3e-5 away from a converged
# solution (ours is 7e-10 away), so its reference runs CVODE at rtol 1e-14, which is still
# 5e-7 away (measured 5.0e-7): that reference error, not ours, sets its bound.
BENCHMARKS = [
    ("Boehm_JProteomeRes2014", 240.0, RTOL, ATOL, 1e-9),
    ("Crauste_CellSystems2017", 28.0, 1e-14, 1e-16, 2e-6),
    ("Bertozzi_PNAS2020", 10.0, RTOL, ATOL, 2e-10),
]


@pytest.mark.parametrize(("name", "t_end", "ref_rtol", "ref_atol", "bound"), BENCHMARKS)
def test_benchmark_model_matches_roadrunner(name, t_end, ref_rtol, ref_atol, bound):
    path = DATA / f"{name}.xml"
    model = load_sbml(path)
    assert model.stiff and model.source[0] == "sbml"
    times = np.linspace(0.0, t_end, 49)
    sol = sb.simulate(model, times, rtol=RTOL, atol=ATOL, max_steps=1_000_000)
    ref = roadrunner_run(path.read_text(), [f"[{s}]" for s in model.state_names], t_end, 49,
                         ref_rtol, ref_atol)
    dev = relative_deviation(sol.states, ref)
    assert np.all(dev < bound), float(np.max(dev))


def test_benchmark_structure():
    boehm = load_sbml(DATA / "Boehm_JProteomeRes2014.xml")
    assert callable(boehm.initial)  # STAT5A(0) = 207.6 * ratio
    assert "BaF3_Epo" in boehm.observable_names  # assignment rule of a parameter
    assert {"cyt", "nuc", "k_phos", "ratio"} <= set(boehm.parameter_names)
    bertozzi = load_sbml(DATA / "Bertozzi_PNAS2020.xml")
    assert "beta_N" in bertozzi.observable_names  # constant set by an initial assignment
    rebuilt = load_sbml(bertozzi.source[1])  # from the stored text
    assert rebuilt.state_names == bertozzi.state_names
    y0 = bertozzi.initial_state(bertozzi.param_array({"I0_": 7.0, "N_": 100.0}))
    assert np.allclose(np.asarray(y0), [7.0, 0.0, 93.0])  # I_, R_, S_


# ----- a feature model written out in SBML -------------------------------------------------
FEATURES = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
 <model id="features">
  <listOfFunctionDefinitions>
   <functionDefinition id="mass_action"><math xmlns="http://www.w3.org/1998/Math/MathML">
    <lambda><bvar><ci>k</ci></bvar><bvar><ci>x</ci></bvar>
     <apply><times/><ci>k</ci><ci>x</ci></apply></lambda></math></functionDefinition>
  </listOfFunctionDefinitions>
  <listOfCompartments><compartment id="C" size="2.5" constant="true"/></listOfCompartments>
  <listOfSpecies>
   <species id="A" compartment="C" initialAmount="5" hasOnlySubstanceUnits="false"
            boundaryCondition="false" constant="false"/>
   <species id="B" compartment="C" initialAmount="1" hasOnlySubstanceUnits="true"
            boundaryCondition="false" constant="false"/>
   <species id="X" compartment="C" initialConcentration="1" hasOnlySubstanceUnits="false"
            boundaryCondition="false" constant="false"/>
   <species id="Y" compartment="C" initialConcentration="0" hasOnlySubstanceUnits="false"
            boundaryCondition="false" constant="false"/>
   <species id="Z" compartment="C" initialConcentration="0.7" hasOnlySubstanceUnits="false"
            boundaryCondition="true" constant="true"/>
  </listOfSpecies>
  <listOfParameters>
   <parameter id="k1" value="0.3" constant="true"/>
   <parameter id="k" value="99" constant="true"/>
   <parameter id="kx" value="0.5" constant="true"/>
   <parameter id="scale" value="3" constant="true"/>
   <parameter id="tot2" constant="false"/>
   <parameter id="total" constant="false"/>
  </listOfParameters>
  <listOfInitialAssignments>
   <initialAssignment symbol="A"><math xmlns="http://www.w3.org/1998/Math/MathML">
    <apply><times/><ci>scale</ci><cn>0.5</cn></apply></math></initialAssignment>
  </listOfInitialAssignments>
  <listOfRules>
   <assignmentRule variable="tot2"><math xmlns="http://www.w3.org/1998/Math/MathML">
    <apply><times/><cn>2</cn><ci>total</ci></apply></math></assignmentRule>
   <assignmentRule variable="total"><math xmlns="http://www.w3.org/1998/Math/MathML">
    <apply><plus/><apply><times/><ci>A</ci><ci>C</ci></apply><ci>B</ci></apply></math>
   </assignmentRule>
   <assignmentRule variable="Y"><math xmlns="http://www.w3.org/1998/Math/MathML">
    <apply><times/><cn>2</cn><ci>A</ci><ci>Z</ci></apply></math></assignmentRule>
   <rateRule variable="X"><math xmlns="http://www.w3.org/1998/Math/MathML">
    <apply><times/><apply><minus/><ci>kx</ci></apply><ci>X</ci></apply></math></rateRule>
  </listOfRules>
  <listOfReactions>
   <reaction id="R1" reversible="false">
    <listOfReactants><speciesReference species="A" stoichiometry="1" constant="true"/>
    </listOfReactants>
    <listOfProducts><speciesReference species="B" stoichiometry="2" constant="true"/>
    </listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML">
     <apply><times/><ci>C</ci><apply><ci>mass_action</ci><ci>k1</ci><ci>A</ci></apply></apply>
    </math></kineticLaw>
   </reaction>
   <reaction id="R2" reversible="false">
    <listOfReactants><speciesReference species="B" stoichiometry="1" constant="true"/>
    </listOfReactants>
    <kineticLaw>
     <math xmlns="http://www.w3.org/1998/Math/MathML">
      <apply><times/><ci>k</ci><ci>B</ci>
       <piecewise>
        <piece><cn>1</cn><apply><lt/><csymbol encoding="text"
         definitionURL="http://www.sbml.org/sbml/symbols/time">t</csymbol><cn>2</cn></apply>
        </piece>
        <otherwise><cn>0.5</cn></otherwise>
       </piecewise></apply></math>
     <listOfLocalParameters><localParameter id="k" value="0.2"/></listOfLocalParameters>
    </kineticLaw>
   </reaction>
  </listOfReactions>
  <listOfEvents>
   <event id="E1" useValuesFromTriggerTime="true">
    <trigger initialValue="false" persistent="true"><math xmlns="http://www.w3.org/1998/Math/MathML">
     <apply><geq/><csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/time">t
     </csymbol><cn>3</cn></apply></math></trigger>
    <listOfEventAssignments>
     <eventAssignment variable="A"><math xmlns="http://www.w3.org/1998/Math/MathML">
      <apply><plus/><ci>A</ci><cn>1</cn></apply></math></eventAssignment>
    </listOfEventAssignments>
   </event>
  </listOfEvents>
 </model>
</sbml>
"""


def test_feature_model_structure():
    model = load_sbml(FEATURES)
    assert model.state_names == ("A", "B", "X")  # Y is set by a rule, Z is constant
    assert model.parameter_names == ("C", "k1", "k", "kx", "scale", "R2_k")
    # and each reaction's rate
    assert set(model.observable_names) == {"Y", "Z", "tot2", "total", "R1", "R2"}
    assert callable(model.initial)
    p = model.param_array({"scale": 4.0})
    assert np.allclose(np.asarray(model.initial_state(p)), [2.0, 1.0, 1.0])  # A = scale / 2


def test_feature_model_matches_roadrunner():
    """Concentrations and amounts in a 2.5-volume compartment, a rate rule, chained rules,
    an initial assignment, a function definition, piecewise, a local parameter, an event;
    the reactions' rates."""
    model = load_sbml(FEATURES)
    times = np.linspace(0.0, 6.0, 61)
    sol = sb.simulate(model, times, rtol=RTOL, atol=ATOL)
    # B has only substance units: the state is its amount ("B" in roadrunner, not "[B]")
    names = {"A": "[A]", "B": "B", "X": "[X]", "Y": "[Y]", "Z": "[Z]", "total": "total",
             "tot2": "tot2", "R1": "R1", "R2": "R2"}
    ref = roadrunner_run(FEATURES, list(names.values()), 6.0, 61)
    ours = np.stack([np.asarray(sol[n]) for n in names], axis=1)
    # libroadrunner 2.10 at the same rtol 1e-12: measured 1.6e-11
    dev = relative_deviation(ours, ref)
    assert np.all(dev < 1e-10), float(np.max(dev))
    a = np.asarray(sol["A"])
    assert times[30] == 3.0 and a[30] > a[29] + 0.9  # the event at t = 3 adds 1 to [A]


# ----- built with libsbml: growing compartment, volume event and the MathML functions ------
MATH = {
    "f_log": "log(2, x + 1)", "f_log10": "log10(x + 1)", "f_ln": "ln(x + 1)",
    "f_root": "root(3, x + 1)", "f_sqrt": "sqrt(x + 1)", "f_pow": "pow(x, 2.5)",
    "f_abs": "abs(x - 1)", "f_round": "floor(3 * x) + ceil(3 * x) + factorial(3)",
    "f_trig": "sin(x) + cos(x) + tan(x / 3) + sec(x / 3) + csc(x + 0.5) + cot(x + 0.5)",
    "f_atrig": "asin(x / 10) + acos(x / 10) + atan(x) + asec(x + 1.5) + acsc(x + 1.5)"
               " + acot(x + 0.5)",
    "f_hyp": "sinh(x) + cosh(x) + tanh(x) + sech(x) + csch(x + 0.5) + coth(x + 0.5)",
    "f_ahyp": "asinh(x) + acosh(x + 1) + atanh(x / 10) + asech(1 / (x + 1.5))"
              " + acsch(x + 0.5) + acoth(x + 1.5)",
    "f_minmax": "max(x, 1, 0.5) + min(x, 1, 0.5)", "f_const": "exponentiale + pi",
    "f_logic": "piecewise(1, (x > 0.55 && x < 1.45) || !(x >= 0.25), 2)",
    "f_xor": "piecewise(1, xor(x > 1.05, x > 0.55), 0)",
    "f_eq": "piecewise(1, x == 0, 2, x != 0, 3)", "f_avogadro": "avogadro / 1e23",
    "f_arith": "(x + 1) / 3 - -x", "f_time": "time * 2",
}


def _add_reaction(m, rid, rate, reactant=None, product=None):
    r = m.createReaction()
    r.setId(rid)
    r.setReversible(False)
    for sid, make in ((reactant, r.createReactant), (product, r.createProduct)):
        if sid:
            sr = make()
            sr.setSpecies(sid)
            sr.setStoichiometry(1.0)
            sr.setConstant(True)
    r.createKineticLaw().setMath(libsbml.parseL3Formula(rate))
    return r


def _add_species(m, sid, compartment, concentration):
    """A variable species given as a concentration, changed by reactions only."""
    s = m.createSpecies()
    for setter, value in (("setId", sid), ("setCompartment", compartment),
                          ("setInitialConcentration", concentration),
                          ("setHasOnlySubstanceUnits", False),
                          ("setBoundaryCondition", False), ("setConstant", False)):
        getattr(s, setter)(value)
    return s


def _add_parameter(m, pid, value=None, constant=True):
    p = m.createParameter()
    p.setId(pid)
    p.setConstant(constant)
    if value is not None:
        p.setValue(value)


def _add_event(m, eid, trigger, assignments):
    e = m.createEvent()
    e.setId(eid)
    e.setUseValuesFromTriggerTime(True)
    t = e.createTrigger()
    t.setInitialValue(False)
    t.setPersistent(True)
    t.setMath(libsbml.parseL3Formula(trigger))
    for var, formula in assignments:
        ea = e.createEventAssignment()
        ea.setVariable(var)
        ea.setMath(libsbml.parseL3Formula(formula))
    return e


def _document(level=3, version=2):
    """A model with a compartment V, a species S in it and a parameter k."""
    doc = libsbml.SBMLDocument(level, version)
    m = doc.createModel()
    m.setId("built")
    c = m.createCompartment()
    c.setId("V")
    c.setSize(2.0)
    c.setConstant(False)
    s = m.createSpecies()
    s.setId("S")
    s.setCompartment("V")
    s.setInitialConcentration(1.0)
    s.setHasOnlySubstanceUnits(False)
    s.setBoundaryCondition(False)
    s.setConstant(False)
    _add_parameter(m, "k", 0.3)
    return doc, m


def _growth_model():
    doc, m = _document()
    _add_parameter(m, "g", 0.1)
    _add_parameter(m, "kp", 0.4)
    _add_parameter(m, "x", 0.0, constant=False)
    m.createRateRule().setVariable("V")
    m.getRateRule("V").setMath(libsbml.parseL3Formula("g * V"))
    m.createRateRule().setVariable("x")
    m.getRateRule("x").setMath(libsbml.parseL3Formula("1"))
    _add_reaction(m, "prod", "kp", product="S")
    _add_reaction(m, "deg", "k * S * V", reactant="S")
    _add_event(m, "double_volume", "time >= 1.5", [("V", "2 * V")])
    for name, formula in MATH.items():
        _add_parameter(m, name, constant=False)
        rule = m.createAssignmentRule()
        rule.setVariable(name)
        rule.setMath(libsbml.parseL3Formula(formula))
    return libsbml.writeSBMLToString(doc)


def test_growing_compartment_and_math_match_roadrunner():
    text = _growth_model()
    model = load_sbml(text)
    assert model.state_names == ("V", "S", "x")
    times = np.linspace(0.0, 3.0, 31)
    sol = sb.simulate(model, times, rtol=RTOL, atol=ATOL)
    names = ["S", "V", "x", *MATH]
    ref = roadrunner_run(text, ["[S]", "V", "x", *MATH], 3.0, 31)
    ours = np.stack([np.asarray(sol[n]) for n in names], axis=1)
    dev = np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref)), axis=0)
    # libroadrunner 2.10 at the same rtol 1e-12: measured 1.0e-11 (V, after its event)
    assert np.all(dev < 1e-10), dict(zip(names, dev, strict=True))


def test_initial_assignment_and_parameters_against_exact_solution():
    doc, m = _document()
    m.getCompartment("V").setConstant(True)
    ia = m.createInitialAssignment()
    ia.setSymbol("S")
    ia.setMath(libsbml.parseL3Formula("2 * k"))
    _add_reaction(m, "deg", "k * S * V", reactant="S")
    model = load_sbml(libsbml.writeSBMLToString(doc))
    times = np.linspace(0.0, 4.0, 9)
    sol = sb.simulate(model, times, params={"k": 0.5}, rtol=1e-10, atol=1e-12)
    assert np.allclose(np.asarray(sol["S"]), 1.0 * np.exp(-0.5 * times), rtol=1e-8)


def test_load_from_path_and_text_agree(tmp_path):
    path = tmp_path / "features.xml"
    path.write_text(FEATURES)
    a, b = load_sbml(path), load_sbml(str(path))
    assert a.name == b.name == "features"
    assert a.source == ("sbml", FEATURES)


# ----- events with state triggers: S' = -k S with k = 0.3, S(0) = 2 ------------------------
def _decay(*events, params=()):
    """The decaying species S (volume 2) with events ``(id, trigger, assignments,
    initialValue)`` and extra constant parameters ``(id, value)``."""
    def edit(m):
        m.getSpecies("S").setInitialConcentration(2.0)
        _add_reaction(m, "deg", "k * S * V", reactant="S")
        for pid, value in params:
            _add_parameter(m, pid, value)
        for eid, trigger, assignments, initial_value in events:
            _add_event(m, eid, trigger, assignments).getTrigger().setInitialValue(initial_value)

    return _with(edit)


def _check(text, times, exact, params=None, model=None):
    """[S] against the exact solution and libroadrunner; returns both deviations.

    atol 1e-12, not ATOL: the event root finder stops only once |g| < atol / 100, which
    rounding of g = 1 - S (~1e-16) cannot reach with atol 1e-14. The bound 1e-8 is what the
    event location achieves (measured at most 1.5e-9 against both references, the sawtooth's
    exact solution and libroadrunner 2.10 at rtol 1e-12), with a sixfold margin."""
    sol = sb.simulate(model or load_sbml(text), times, params=params, rtol=RTOL, atol=1e-12)
    ours = np.asarray(sol["S"])[:, None]
    dev_exact = relative_deviation(ours, exact[:, None])[0]
    assert dev_exact < 1e-8, dev_exact
    if params:
        return dev_exact, None
    dev_rr = relative_deviation(ours, roadrunner_run(text, ["[S]"], times[-1], len(times)))[0]
    assert dev_rr < 1e-8, dev_rr
    return dev_exact, dev_rr


def test_state_triggered_event_sawtooth():
    """Topped up by 1 whenever S falls below 1: a sawtooth of period ln(2) / k."""
    text = _decay(("E1", "S < 1", [("S", "S + 1")], False))
    times = np.linspace(0.0, 10.0, 101)
    _check(text, times, 2.0 * np.exp(-0.3 * np.mod(times, np.log(2.0) / 0.3)))


def test_and_trigger_of_time_and_species():
    """From t = 3 on, S is topped up by 1 whenever it is below 1.5: first at t = 3 (S has
    been below 1.5 since t = 0.96), then each time it falls through 1.5 from 2.5."""
    text = _decay(("E1", "and(time >= 3, S < 1.5)", [("S", "S + 1")], False))
    times = np.linspace(0.0, 8.0, 71)
    s3 = 2.0 * np.exp(-0.9) + 1.0
    t1 = 3.0 + np.log(s3 / 1.5) / 0.3
    exact = np.where(times < 3.0, 2.0 * np.exp(-0.3 * times),
                     np.where(times < t1, s3 * np.exp(-0.3 * (times - 3.0)),
                              2.5 * np.exp(-0.3 * np.mod(times - t1, np.log(2.5 / 1.5) / 0.3))))
    _check(text, times, exact)


def test_trigger_time_from_a_parameter():
    """``time >= ton`` with a parameter ton: a dose whose time is a model parameter."""
    text = _decay(("E1", "time >= ton", [("S", "S + 1")], False), params=[("ton", 1.7)])
    model = load_sbml(text)
    assert "ton" in model.parameter_names
    times = np.linspace(0.0, 4.0, 41)

    def exact(ton):
        return np.where(times < ton, 2.0 * np.exp(-0.3 * times),
                        2.0 * np.exp(-0.3 * times) + np.exp(-0.3 * (times - ton)))

    _check(text, times, exact(1.7), model=model)
    _check(text, times, exact(2.55), params={"ton": 2.55}, model=model)


@pytest.mark.parametrize("initial_value", [False, True])
def test_trigger_true_at_start_respects_initial_value(initial_value):
    """``S > 1.5`` holds at t = 0: with initialValue false the event fires there (S: 2 -> 3),
    with initialValue true it waits for the trigger to turn false and true again (never)."""
    text = _decay(("E1", "S > 1.5", [("S", "S + 1")], initial_value))
    model = load_sbml(text)
    assert [e.name for e in model.events] == ["E1"] if initial_value else ["E1_at_t0", "E1"]
    times = np.linspace(0.0, 4.0, 41)
    _check(text, times, (2.0 if initial_value else 3.0) * np.exp(-0.3 * times), model=model)


TRIGGERS = {  # trigger -> its truth as a function of (t, S)
    "or(S < 1, and(time > 7, not(S > 1.2)))": lambda t, s: s < 1 or (t > 7 and s <= 1.2),
    "xor(S < 1, time > 5)": lambda t, s: (s < 1) != (t > 5),
    "implies(time < 5, S <= 1)": lambda t, s: t >= 5 or s <= 1,
    "1.2 > S > 0.5": lambda t, s: 0.5 < s < 1.2,
    "low(S, 1) || time >= 2 * k": lambda t, s: s < 1 or t >= 0.6,
    "true": lambda t, s: True,
    "false": lambda t, s: False,
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_trigger_function_sign_is_the_trigger_truth(trigger):
    def edit(m):
        fd = m.createFunctionDefinition()
        fd.setId("low")
        fd.setMath(libsbml.parseL3Formula("lambda(x, c, x < c)"))
        _add_event(m, "E1", trigger, [("S", "1")]).getTrigger().setInitialValue(True)

    model = load_sbml(_with(edit))
    (event,) = model.events
    p = model.param_array(None)
    for t in (0.3, 0.7, 6.3, 8.1):
        for s in (0.3, 0.9, 1.1, 1.7):
            g = float(event.trigger(t, jnp.array([s]), p))
            assert (g > 0) == TRIGGERS[trigger](t, s), (t, s, g)


# ----- what raises -----------------------------------------------------------------------
def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.xml"
    with pytest.raises(SBMLError, match="nope.xml.*does not exist"):
        load_sbml(missing)


def test_malformed_xml(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text('<?xml version="1.0"?>\n<sbml level="3" version="2"><model id="m">')
    with pytest.raises(SBMLError, match="broken.xml: not valid SBML"):
        load_sbml(path)


def _with(edit, level=3, version=2):
    doc, m = _document(level, version)
    m.getCompartment("V").setConstant(True)
    edit(m)
    return libsbml.writeSBMLToString(doc)


def test_algebraic_rules_are_solved_for_the_variables_they_determine():
    """0 = a - 2 S (linear) and 0 = b^2 - S (nonlinear: Newton from b's value 1 finds the
    positive root) while S decays: a = 2 S and b = sqrt(S) at every time, from t = 0 on
    (the values in the file, 0 and 1, are not consistent and are not used)."""
    def edit(m):
        _add_reaction(m, "R", "k * S * V", reactant="S")
        _add_parameter(m, "a", 0.0, constant=False)
        _add_parameter(m, "b", 1.0, constant=False)
        m.createAlgebraicRule().setMath(libsbml.parseL3Formula("a - 2 * S"))
        m.createAlgebraicRule().setMath(libsbml.parseL3Formula("b^2 - S"))

    ts = np.linspace(0.0, 3.0, 7)
    sol = sb.simulate(load_sbml(_with(edit)), ts, rtol=RTOL, atol=ATOL)
    exact = np.exp(-0.3 * ts)  # [S] from 1
    np.testing.assert_allclose(sol["S"], exact, rtol=1e-9)
    np.testing.assert_allclose(sol["a"], 2 * exact, rtol=1e-9)
    np.testing.assert_allclose(sol["b"], np.sqrt(exact), rtol=1e-9)


def test_algebraic_rule_without_a_free_variable_raises():
    def edit(m):  # a is set by its rule, S by the reaction
        _add_reaction(m, "R", "k * S * V", reactant="S")
        _add_parameter(m, "a", 1.0, constant=False)
        m.createAssignmentRule().setVariable("a")
        m.getAssignmentRule("a").setMath(libsbml.parseL3Formula("2 * k"))
        m.createAlgebraicRule().setMath(libsbml.parseL3Formula("a - S"))

    with pytest.raises(SBMLError, match="overdetermined"):  # (libsbml says so first)
        load_sbml(_with(edit))


@pytest.mark.parametrize("trigger", ["S == 1", "S != 1", "piecewise(true, S < 1, false)"])
def test_unsupported_trigger_form_raises(trigger):
    with pytest.raises(SBMLError, match="trigger of event 'E1': the trigger form .* is not "
                                        "supported"):
        load_sbml(_with(lambda m: _add_event(m, "E1", trigger, [("S", "1")])))


def test_delay_raises():
    with pytest.raises(SBMLError, match="reaction 'R'.*delay"):
        load_sbml(_with(lambda m: _add_reaction(m, "R", "k * delay(S, 1)", reactant="S")))


def test_delayed_prioritised_and_non_persistent_events_match_roadrunner():
    """SBML event semantics: S decays and is reset 0.4 after it falls below 0.5 (values
    from the trigger time); at t = 2 two events with priorities act on x in order; a
    non-persistent event whose trigger is false again before its delay ends never acts."""
    def edit(m):
        _add_reaction(m, "R", "k * S * V", reactant="S")
        _add_parameter(m, "x", 1.0, constant=False)
        _add_parameter(m, "w", 0.0, constant=False)
        reset = _add_event(m, "reset", "S < 0.5", [("S", "S + 1.5"), ("w", "time")])
        reset.createDelay().setMath(libsbml.parseL3Formula("0.4"))
        for eid, formula, priority in (("double", "2 * x", "1"), ("add", "x + 1", "2")):
            e = _add_event(m, eid, "time >= 2", [("x", formula)])
            e.setUseValuesFromTriggerTime(False)
            e.createPriority().setMath(libsbml.parseL3Formula(priority))
        # true on (3, 3.2) only; its execution would be due at 4
        brief = _add_event(m, "brief", "(time > 3) && (time < 3.2)", [("x", "100")])
        brief.getTrigger().setPersistent(False)
        brief.createDelay().setMath(libsbml.parseL3Formula("1"))

    text = _with(edit)
    model = load_sbml(text)
    sol = sb.simulate(model, np.linspace(0.0, 6.0, 25), rtol=RTOL, atol=ATOL)
    ours = np.stack([sol["S"], sol["x"], sol["w"]], axis=1)
    ref = roadrunner_run(text, ["[S]", "x", "w"], 6.0, 25)
    np.testing.assert_allclose(ours[:, 1], np.where(np.linspace(0, 6, 25) >= 2, 4.0, 1.0))
    assert np.max(ref[:, 2]) > 0  # the reset happened
    # libroadrunner 2.10 at the same tolerances: measured below 1e-10
    np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-10)


def test_fast_reaction_is_in_equilibrium_while_a_slow_one_drains_it():
    """S <-> P fast (kf S - kr P, K = kf/kr = 3) and P -> (slow, k P): P = K S at every time,
    including t = 0 (the file's P = 0 is not in equilibrium: the amount S + P is kept), and
    the amount w = V (S + P) decays as exp(-k K/(1 + K) t)."""
    def edit(m):
        _add_species(m, "P", "V", 0.0)
        _add_parameter(m, "kf", 0.6)
        _add_parameter(m, "kr", 0.2)
        fast = _add_reaction(m, "F", "(kf * S - kr * P) * V", reactant="S", product="P")
        fast.setFast(True)
        _add_reaction(m, "drain", "k * P * V", reactant="P").setFast(False)

    model = load_sbml(_with(edit, version=1))
    ts = np.linspace(0.0, 4.0, 9)
    sol = sb.simulate(model, ts, rtol=RTOL, atol=ATOL)
    big_k, volume = 3.0, 2.0
    w = volume * 1.0 * np.exp(-0.3 * big_k / (1 + big_k) * ts)
    s_exact = w / (volume * (1 + big_k))
    np.testing.assert_allclose(sol["S"], s_exact, rtol=1e-9)
    np.testing.assert_allclose(sol["P"], big_k * s_exact, rtol=1e-9)


def test_dependent_fast_reactions_raise():
    def edit(m):
        _add_reaction(m, "F1", "k * S", reactant="S").setFast(True)
        _add_reaction(m, "F2", "2 * k * S", reactant="S").setFast(True)

    with pytest.raises(SBMLError, match="linearly dependent"):
        load_sbml(_with(edit, version=1))


def test_parameters_that_nothing_changes_stay_parameters():
    """constant="false" on a parameter that no rule or event changes (as PEtab problems
    often declare their condition parameters) keeps it a parameter; one that an event
    changes is a state. Both simulate as libroadrunner does."""
    doc, m = _document()
    m.getCompartment("V").setConstant(True)
    _add_parameter(m, "dose", 0.5, constant=False)   # never changed
    _add_parameter(m, "kin", 0.2, constant=False)    # changed by an event
    _add_reaction(m, "prod", "dose + kin", product="S")
    _add_reaction(m, "deg", "k * S", reactant="S")
    _add_event(m, "switch", "time >= 1", [("kin", "1.5")])
    text = libsbml.writeSBMLToString(doc)
    model = load_sbml(text)
    assert "dose" in model.parameter_names and "dose" not in model.state_names
    assert "kin" in model.state_names
    times = np.linspace(0.0, 3.0, 31)
    sol = sb.simulate(model, times, rtol=RTOL, atol=ATOL)
    ref = roadrunner_run(text, ["[S]"], 3.0, 31)[:, 0]
    np.testing.assert_allclose(np.asarray(sol["S"]), ref, rtol=1e-9, atol=1e-12)
    # a condition can now set it as a parameter: the exact solution with dose 2 before the
    # event (rates are amounts per time in V = 2): S' = (dose + 0.2 - k S) / 2, S(0) = 1, at
    # t = 0.5 (the same times as above: the compiled simulation is reused)
    one = sb.simulate(model, times, params={"dose": 2.0}, rtol=RTOL, atol=ATOL)
    s_inf = (2.0 + 0.2) / 0.3
    assert times[5] == 0.5
    assert float(one["S"][5]) == pytest.approx(s_inf + (1.0 - s_inf) * np.exp(-0.15 * 0.5),
                                               rel=1e-9)


def _switched_dose():
    """dS/dt = dose * (time >= t_on) - k S: a dose switched on at the parameter t_on."""
    doc, m = _document()
    m.getCompartment("V").setConstant(True)
    m.getCompartment("V").setSize(1.0)
    m.getSpecies("S").setInitialConcentration(0.0)
    _add_parameter(m, "dose", 2.0)
    _add_parameter(m, "t_on", 1.3)
    _add_reaction(m, "prod", "dose * piecewise(0, time - t_on < 0, 1)", product="S")
    _add_reaction(m, "deg", "k * S", reactant="S")
    return load_sbml(libsbml.writeSBMLToString(doc))


def test_piecewise_switch_in_time_is_a_breakpoint_with_exact_sensitivities():
    model = _switched_dose()
    names = model.parameter_names
    p0 = np.asarray(model.param_array({}))
    np.testing.assert_allclose(model.breakpoint_times(p0), [1.3])
    # S(t) = dose / k (1 - exp(-k tau)), tau = t - t_on: its derivatives in k and t_on
    dose, k, t_on, t = 2.0, 0.3, 1.3, 3.0
    tau = t - t_on
    e = np.exp(-k * tau)
    exact = {"k": dose * (-(1 - e) / k**2 + tau * e / k), "t_on": -dose * e}
    for solver in (None, Rodas5()):
        sim = sb.Simulator(model, [0.0, 1.0, t], solver=solver, rtol=1e-10, atol=1e-12,
                           sensitivities="forward")
        s_end = lambda p, sim=sim: sim(params=p)["S"][-1]  # noqa: E731
        assert float(s_end(p0)) == pytest.approx(dose / k * (1 - e), rel=1e-8)
        grad = jax.jacfwd(s_end)(jnp.asarray(p0))
        for name, value in exact.items():
            assert float(grad[names.index(name)]) == pytest.approx(value, rel=1e-6), \
                (solver, name)


# ----- vectorised rates: laws of one shape are evaluated together --------------------------
def _hill(x, k):
    return x**2 / (k**2 + x**2)


def _chain_model(n: int):
    """A chain of ``n`` species with reactions of a few shapes: reversible mass action with
    literal and named constants, Michaelis-Menten, a function call, local parameters and a
    law that reads another reaction's rate (through an assignment rule). Returns the SBML
    text and each reaction's (rate as a numpy function of a values dict, reactant,
    product)."""
    doc = libsbml.SBMLDocument(3, 2)
    m = doc.createModel()
    m.setId("chain")
    c = m.createCompartment()
    c.setId("cell")
    c.setSize(1.5)
    c.setConstant(True)
    fd = m.createFunctionDefinition()
    fd.setId("hill")
    fd.setMath(libsbml.parseL3Formula("lambda(x, K, x^2 / (K^2 + x^2))"))
    for i in range(n):
        s = m.createSpecies()
        s.setId(f"S{i}")
        s.setCompartment("cell")
        s.setInitialConcentration(1.0 + 0.1 * i)
        s.setHasOnlySubstanceUnits(i % 5 == 4)  # some amounts
        s.setBoundaryCondition(False)
        s.setConstant(False)
        _add_parameter(m, f"k{i}", 0.1 + 0.01 * i)
    _add_parameter(m, "flux", constant=False)
    rule = m.createAssignmentRule()
    rule.setVariable("flux")
    rule.setMath(libsbml.parseL3Formula("R0 * 2"))
    laws = []
    for i in range(n - 1):
        a, b, k = f"S{i}", f"S{i + 1}", f"k{i}"
        law, fn = [
            (f"cell * ({k} * {a} - 0.05 * {b})",
             lambda v, a=a, b=b, k=k: 1.5 * (v[k] * v[a] - 0.05 * v[b])),
            (f"cell * 2.5 * {a} / (0.7 + {a})",
             lambda v, a=a: 1.5 * 2.5 * v[a] / (0.7 + v[a])),
            (f"cell * {k} * hill({a}, 1.3)",
             lambda v, a=a, k=k: 1.5 * v[k] * _hill(v[a], 1.3)),
            (f"cell * kf * {a} * {b}",
             lambda v, a=a, b=b, i=i: 1.5 * 0.02 * i * v[a] * v[b]),
        ][i % 4]
        r = _add_reaction(m, f"R{i}", law, reactant=a, product=b)
        if i % 4 == 3:
            lp = r.getKineticLaw().createLocalParameter()
            lp.setId("kf")
            lp.setValue(0.02 * i)
        laws.append((fn, a, b))
    _add_reaction(m, "Rflux", "0.01 * flux", product=f"S{n - 1}")
    laws.append((lambda v: 0.01 * 2 * laws[0][0](v), None, f"S{n - 1}"))
    return libsbml.writeSBMLToString(doc), laws


@pytest.mark.parametrize("n", [23, 300])  # scalar laws; shapes of 75 laws as vectors
def test_rates_agree_with_laws_evaluated_one_by_one(n):
    text, laws = _chain_model(n)
    model = load_sbml(text)
    p = model.parameter_values()
    y = model.initial_state(p)
    ours = np.asarray(model.vector_field(0.0, y, p))
    values = dict(zip(model.state_names, np.asarray(y), strict=True))
    values.update(zip(model.parameter_names, np.asarray(p), strict=True))
    expected = dict.fromkeys(model.state_names, 0.0)
    for fn, reactant, product in laws:  # the same laws written in numpy, one by one
        rate = fn(values)
        for sign, sid in ((-1.0, reactant), (1.0, product)):
            if sid is not None:
                volume = 1.0 if int(sid[1:]) % 5 == 4 else 1.5
                expected[sid] += sign * rate / volume
    np.testing.assert_allclose(ours, [expected[s] for s in model.state_names], rtol=1e-13,
                               atol=1e-15)


def test_program_size_does_not_grow_with_the_number_of_reactions():
    """Laws of one shape are one vectorised evaluation: the right-hand side of a
    600-species chain compiles to as many operations as that of a 300-species chain (whose
    shapes of 75 laws are already vectors, MIN_GROUP = 64; loading a chain, not the check,
    is what takes the time, and more so the longer it is)."""
    sizes = []
    for n in (300, 600):
        model = load_sbml(_chain_model(n)[0])
        p = model.parameter_values()
        jaxpr = jax.make_jaxpr(lambda y, p, m=model: m.vector_field(0.0, y, p))(
            model.initial_state(p), p)
        sizes.append(len(jaxpr.eqns))
    assert sizes[0] == sizes[1]


# ----- hierarchical models: the comp package is flattened ---------------------------------
def _comp_model(external: bool = False) -> str:
    """A decay submodel instantiated twice with different rate constants (replaced from
    the parent), as libsbml's comp examples build it."""
    ns = libsbml.SBMLNamespaces(3, 1, "comp", 1)
    doc = libsbml.SBMLDocument(ns)
    doc.setPackageRequired("comp", True)
    plugin = doc.getPlugin("comp")
    if external:
        ext = plugin.createExternalModelDefinition()
        ext.setId("decay")
        ext.setSource("other_file.xml")
    else:
        sub = plugin.createModelDefinition()
        sub.setId("decay")
        c = sub.createCompartment()
        c.setId("cell")
        c.setSize(1.0)
        c.setConstant(True)
        _add_species(sub, "S", "cell", 2.0)
        _add_parameter(sub, "k", 1.0)
        _add_reaction(sub, "deg", "k * S", reactant="S").setFast(False)
    m = doc.createModel()
    m.setId("parent")
    mplugin = m.getPlugin("comp")
    for name, k in (("A", 0.5), ("B", 2.0)):
        pid = f"k_{name}"
        _add_parameter(m, pid, k)
        inst = mplugin.createSubmodel()
        inst.setId(name)
        inst.setModelRef("decay")
        if not external:
            rep = m.getParameter(pid).getPlugin("comp").createReplacedElement()
            rep.setSubmodelRef(name)
            rep.setIdRef("k")
    return libsbml.writeSBMLToString(doc)


def test_hierarchical_model_is_flattened_and_simulates_exactly():
    model = load_sbml(_comp_model())
    species = [s for s in model.state_names if s.endswith("S")]
    assert len(species) == 2
    times = np.linspace(0.0, 2.0, 5)
    sol = sb.simulate(model, times, rtol=1e-10, atol=1e-12)
    rates = sorted(float(model.param_array({})[model.parameter_names.index(n)])
                   for n in ("k_A", "k_B"))
    ends = sorted((np.asarray(sol[s]) for s in species), key=lambda v: -v[-1])
    for values, k in zip(ends, rates, strict=True):  # the slower decay stays higher
        np.testing.assert_allclose(values, 2.0 * np.exp(-k * times), rtol=1e-8)


def test_hierarchical_model_with_external_definitions_is_refused():
    with pytest.raises(SBMLError, match="external model definitions"):
        load_sbml(_comp_model(external=True))


# ----- the SBML Test Suite (semantic time-course cases, tests/data/sbml-test-suite) ---------
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import sbml_test_suite as suite  # noqa: E402

# A representative subset: amounts and concentrations, function definitions, events,
# variable stoichiometry (Level 2 stoichiometryMath), compartments sized by assignment rules,
# amounts kept while a compartment grows (species without reactions, constant species),
# INF and NaN values, hierarchical models (comp, flattened) and rateOf.
# then: a delayed event, priorities, competing non-persistent events, a trigger window with
# kinks (docs/decisions/0022); trigger windows that open and close inside one solver step
# (libroadrunner misses 01511); fast reactions whose rate k * S * Sb is zero where either
# species is, so that only the reactions' own flow tells which (docs/decisions/0023); a
# reaction's rate as an output.
# Cases whose constructs a test above already checks against libroadrunner run with -m slow
# only (as does the whole suite, test_sbml_test_suite_has_no_wrong_numbers_or_crashes):
# 1 (mass action in amounts), 25 (a function definition) and 139 (an assignment rule to a
# species): test_feature_model_matches_roadrunner; 41 (a state-triggered reset):
# test_state_triggered_event_sawtooth; 311 (a species in a compartment grown by a rate
# rule): test_growing_compartment_and_math_match_roadrunner; 71 (a reset after a delay) and
# 931 (two events at one instant, by priority):
# test_delayed_prioritised_and_non_persistent_events_match_roadrunner.
_SLOW_ONLY = {1, 25, 41, 139, 311, 71, 931}
SUBSET = [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_ONLY else n
          for n in (1, 25, 41, 69, 139, 311, 927, 951, 1117, 1125, 1131, 1459, 71, 931, 963,
                    1525, 1511, 1575, 1399, 1569, 1345)]


@pytest.mark.parametrize("number", SUBSET)
def test_sbml_test_suite_subset(number):
    case = suite.read_case(number)
    status, reason = suite.run_scalebridge(case)
    assert status == "passed", reason




@pytest.mark.slow
def test_sbml_test_suite_has_no_wrong_numbers_or_crashes():
    """Every time-course case of the shipped half passes or is refused with an SBMLError
    that names the missing feature; a wrong number or a crash is a bug."""
    bad = {}
    for number in suite.case_numbers():
        case = suite.read_case(number)
        if case["type"] != "TimeCourse":
            continue
        status, reason = suite.run_scalebridge(case)
        suite._release()
        if status in ("failed", "crashed"):
            bad[case["case"]] = f"{status}: {reason}"
    assert not bad, bad
